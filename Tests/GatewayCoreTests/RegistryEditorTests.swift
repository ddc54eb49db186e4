import Foundation
import Testing
@testable import GatewayCore

/// The line edits `iot-gateway devices …` makes to registry files: only the
/// entry concerned changes; comments, blank lines and indentation stay.
@Suite("Registry editing")
struct RegistryEditorTests {
    static let psk = "6b6579"
    static let hash = Secrets.tokenHash("t").hex

    /// A multi-device file as an operator writes it: header comment, a
    /// comment per entry, trailing comments, blank lines, a nested list.
    static let operatorFile = """
        # Site A devices. Owner: ops@example.com
        devices:
          # The kitchen sensor, since 2024-03
          - id: kitchen-1
            groups: [kitchen, sensors]   # both rooms
            psk: \(psk)

          - id: meter-7
            cert_name: meter-7.devices.example
            disabled: false  # re-enabled after repair

          - id: hall-2
            token_sha256: \(hash)
            cert_sha256:
              - \(String(repeating: "ab", count: 32))
        # end of site A

        """

    static func document(_ text: String) throws -> RegistryDocument {
        try RegistryDocument(text: text, file: "devices.yaml")
    }

    /// Parses `text` as the loader does: its ids, in order, and disabled flags.
    static func load(_ text: String) throws -> [Device] {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let path = try fixture.write("devices.yaml", text)
        chmod(path, 0o600)
        return try RegistryLoader.load(DeviceSettings(files: [path])).registry.devices
    }

    // MARK: Finding entries

    @Test func entriesAreFoundWithTheirLines() throws {
        let document = try Self.document(Self.operatorFile)
        #expect(document.entries.map(\.id) == ["kitchen-1", "meter-7", "hall-2"])
        #expect(document.entries.map(\.line) == [4, 8, 12])
    }

    @Test func aDashOnItsOwnLineIsFound() throws {
        let text = "devices:\n  -\n    id: a\n    psk: \(Self.psk)\n  - id: b\n    psk: \(Self.psk)\n"
        let document = try Self.document(text)
        #expect(document.entries.map(\.line) == [2, 5])
        #expect(try document.removing(id: "a") == "devices:\n  - id: b\n    psk: \(Self.psk)\n")
    }

    // MARK: Disable / enable

    @Test func disableReplacesAnExistingValueAndKeepsItsComment() throws {
        let text = try #require(try Self.document(Self.operatorFile).settingDisabled(true, id: "meter-7"))
        #expect(text == Self.operatorFile.replacingOccurrences(
            of: "    disabled: false  # re-enabled after repair", with: "    disabled: true  # re-enabled after repair"))
        #expect(try Self.load(text).map(\.disabled) == [false, true, false])
    }

    @Test func disableInsertsAtTheEntrysKeyIndentation() throws {
        let text = try #require(try Self.document(Self.operatorFile).settingDisabled(true, id: "kitchen-1"))
        #expect(text == Self.operatorFile.replacingOccurrences(
            of: "    psk: \(Self.psk)\n", with: "    psk: \(Self.psk)\n    disabled: true\n"))
        #expect(try Self.load(text).map(\.disabled) == [true, false, false])
    }

    @Test func disableAfterANestedListOfTheLastEntry() throws {
        let text = try #require(try Self.document(Self.operatorFile).settingDisabled(true, id: "hall-2"))
        let fingerprint = "      - \(String(repeating: "ab", count: 32))\n"
        #expect(text == Self.operatorFile.replacingOccurrences(of: fingerprint, with: fingerprint + "    disabled: true\n"))
        #expect(try Self.load(text).map(\.disabled) == [false, false, true])
    }

    @Test func otherIndentationStylesAreKept() throws {
        // Four spaces, and a list not indented under its key.
        let wide = "devices:\n    -   id: a\n        psk: \(Self.psk)\n"
        #expect(try Self.document(wide).settingDisabled(true, id: "a") == wide + "        disabled: true\n")
        let flat = "devices:\n- id: a\n  psk: \(Self.psk)\n- id: b\n  psk: \(Self.psk)\n"
        let disabled = try #require(try Self.document(flat).settingDisabled(true, id: "a"))
        #expect(disabled == "devices:\n- id: a\n  psk: \(Self.psk)\n  disabled: true\n- id: b\n  psk: \(Self.psk)\n")
        #expect(try Self.load(disabled).map(\.disabled) == [true, false])
    }

    @Test func enableReplacesTrueAndLeavesAnEnabledDeviceAlone() throws {
        let text = "devices:\n  - id: a\n    disabled: TRUE   # broken\n    psk: \(Self.psk)\n  - id: b\n    psk: \(Self.psk)\n"
        let document = try Self.document(text)
        #expect(try document.settingDisabled(false, id: "a") == text.replacingOccurrences(of: "TRUE", with: "false"))
        #expect(try document.settingDisabled(false, id: "b") == nil)
        #expect(try document.settingDisabled(true, id: "a") == nil)
    }

    @Test func quotedValuesAreReplacedWhole() throws {
        let text = "devices:\n  - {id: a, psk: \(Self.psk), disabled: \"false\"}\n"
        #expect(try Self.document(text).settingDisabled(true, id: "a") == "devices:\n  - {id: a, psk: \(Self.psk), disabled: true}\n")
    }

    @Test func aFlowEntryWithoutDisabledIsRefused() throws {
        let document = try Self.document("devices:\n  - {id: a, psk: \(Self.psk)}\n")
        #expect(throws: RegistryEditError.self) { try document.settingDisabled(true, id: "a") }
    }

    // MARK: Remove

    @Test func removeTheFirstEntryWithItsComment() throws {
        let text = try Self.document(Self.operatorFile).removing(id: "kitchen-1")
        #expect(text == """
            # Site A devices. Owner: ops@example.com
            devices:
              - id: meter-7
                cert_name: meter-7.devices.example
                disabled: false  # re-enabled after repair

              - id: hall-2
                token_sha256: \(Self.hash)
                cert_sha256:
                  - \(String(repeating: "ab", count: 32))
            # end of site A

            """)
        #expect(try Self.load(text).map(\.id) == ["meter-7", "hall-2"])
    }

    @Test func removeTheMiddleEntry() throws {
        let text = try Self.document(Self.operatorFile).removing(id: "meter-7")
        #expect(text == Self.operatorFile.replacingOccurrences(
            of: "  - id: meter-7\n    cert_name: meter-7.devices.example\n    disabled: false  # re-enabled after repair\n\n", with: ""))
        #expect(try Self.load(text).map(\.id) == ["kitchen-1", "hall-2"])
    }

    @Test func removeTheLastEntryKeepsTheTrailingComment() throws {
        let text = try Self.document(Self.operatorFile).removing(id: "hall-2")
        #expect(text == """
            # Site A devices. Owner: ops@example.com
            devices:
              # The kitchen sensor, since 2024-03
              - id: kitchen-1
                groups: [kitchen, sensors]   # both rooms
                psk: \(Self.psk)

              - id: meter-7
                cert_name: meter-7.devices.example
                disabled: false  # re-enabled after repair
            # end of site A

            """)
        #expect(try Self.load(text).map(\.id) == ["kitchen-1", "meter-7"])
    }

    @Test func removeTheOnlyEntryLeavesAnEmptyList() throws {
        let text = "# one device\ndevices:   # here\n  - id: a\n    psk: \(Self.psk)\n"
        let removed = try Self.document(text).removing(id: "a")
        #expect(removed == "# one device\ndevices: []   # here\n")
        #expect(try Self.load(removed).isEmpty)
    }

    @Test func unknownAndDuplicateIdsAreReported() throws {
        let document = try Self.document("devices:\n  - id: a\n  - id: a\n")
        #expect(throws: RegistryEditError.self) { try document.removing(id: "b") }
        do {
            _ = try document.removing(id: "a")
            Issue.record("removed a duplicate id")
        } catch {
            guard case .definedTwice(_, let locations) = error else { Issue.record("\(error)"); return }
            #expect(locations.map(\.line) == [2, 3])
        }
    }

    @Test func aFlowListIsRefused() throws {
        let document = try Self.document("devices: [{id: a, psk: \(Self.psk)}]\n")
        #expect(throws: RegistryEditError.self) { try document.removing(id: "a") }
        #expect(throws: RegistryEditError.self) { try document.appending(NewDevice(id: "b", pskHex: Self.psk)) }
    }

    // MARK: Add

    @Test func appendFollowsTheEntriesBefore() throws {
        let device = NewDevice(id: "new-1", groups: ["kitchen"], pskHex: Self.psk)
        let text = try Self.document(Self.operatorFile).appending(device)
        #expect(text == Self.operatorFile.replacingOccurrences(
            of: "# end of site A\n",
            with: "\n  - id: new-1\n    groups: [kitchen]\n    psk: \(Self.psk)\n# end of site A\n"))
        #expect(try Self.load(text).map(\.id) == ["kitchen-1", "meter-7", "hall-2", "new-1"])
    }

    @Test func appendToFlatAndEmptyLists() throws {
        let device = NewDevice(id: "b", pskHex: Self.psk)
        let flat = "devices:\n- id: a\n  psk: \(Self.psk)\n"
        #expect(try Self.document(flat).appending(device) == flat + "- id: b\n  psk: \(Self.psk)\n")
        #expect(try Self.document("devices: []  # none yet\n").appending(device) == "devices:  # none yet\n  - id: b\n    psk: \(Self.psk)\n")
        #expect(try Self.document("devices:\n").appending(device) == "devices:\n  - id: b\n    psk: \(Self.psk)\n")
        #expect(try Self.document("# nothing yet\n").appending(device) == "# nothing yet\n\ndevices:\n  - id: b\n    psk: \(Self.psk)\n")
        #expect(try Self.document("").appending(device) == "devices:\n  - id: b\n    psk: \(Self.psk)\n")
    }

    @Test func aNewEntryWithEveryKeyLoadsBack() throws {
        let fingerprints = [Digest.sha256(Array("one".utf8)), Digest.sha256(Array("two".utf8))]
        let device = NewDevice(
            id: "a:b", groups: ["g1", "true"], pskHex: Self.psk, tokenHash: Secrets.tokenHash("t"),
            certificateFingerprints: fingerprints, certificateName: "dev \"a\".example"
        )
        let loaded = try #require(try Self.load(RegistryDocument.newFile(with: device)).first)
        #expect(loaded.id == "a:b")
        #expect(loaded.groups == ["g1", "true"])
        #expect(loaded.psk == [0x6b, 0x65, 0x79])
        #expect(loaded.tokenHash == Secrets.tokenHash("t"))
        #expect(loaded.certificateFingerprints == fingerprints)
        #expect(loaded.certificateName == "dev \"a\".example")
    }

    @Test func newDeviceValidation() {
        #expect(throws: RegistryEditError.noCredential) { try NewDevice(id: "a").validate() }
        #expect(throws: RegistryEditError.self) { try NewDevice(id: "-a", pskHex: "00").validate() }
        #expect(throws: RegistryEditError.self) { try NewDevice(id: "a", groups: ["a b"], pskHex: "00").validate() }
        #expect(throws: Never.self) { try NewDevice(id: "a", certificateName: "a.example").validate() }
    }

    /// `coap-client -k KEY` uses the key's characters as the key bytes:
    /// the stored hex must be exactly those bytes.
    @Test func theStoredPSKIsTheHexOfThePrintedText() throws {
        for _ in 0..<20 {
            let key = Secrets.newPSK()
            let hex = NewDevice.pskHex(forKeyText: key)
            #expect(Hex.decode(hex) == Array(key.utf8))
            #expect(hex.count == 2 * key.utf8.count)
            let loaded = try #require(try Self.load(RegistryDocument.newFile(with: NewDevice(id: "d", pskHex: hex))).first)
            #expect(loaded.psk == Array(key.utf8))
        }
        #expect(NewDevice.pskHex(forKeyText: "Ab9") == "416239")
    }

    // MARK: Target file

    @Test func targetFileSelection() throws {
        let dir = "/etc/iot-gateway"
        func target(_ id: String, _ explicit: String?, _ patterns: [String]) throws -> String {
            try RegistryTarget.file(forNewDevice: id, explicit: explicit, patterns: patterns)
        }
        // One file per device for DIR/*.EXT.
        #expect(try target("kitchen-1", nil, ["\(dir)/devices/*.yaml"]) == "\(dir)/devices/kitchen-1.yaml")
        #expect(try target("a:b", nil, ["\(dir)/d/*.yml", "\(dir)/other.yaml"]) == "\(dir)/d/a:b.yml")
        // A first pattern without wildcard is the file.
        #expect(try target("k", nil, ["\(dir)/devices.yaml", "\(dir)/d/*.yaml"]) == "\(dir)/devices.yaml")
        // --file wins, if a pattern matches it.
        #expect(try target("k", "\(dir)/d/site-a.yaml", ["\(dir)/d/*.yaml"]) == "\(dir)/d/site-a.yaml")
        #expect(try target("k", "\(dir)/devices.yaml", ["\(dir)/d/*.yaml", "\(dir)/devices.yaml"]) == "\(dir)/devices.yaml")
        #expect(throws: RegistryEditError.fileNotInRegistry("\(dir)/x.yaml", patterns: ["\(dir)/d/*.yaml"])) {
            try target("k", "\(dir)/x.yaml", ["\(dir)/d/*.yaml"])
        }
        // '*' does not cross '/', nor match a hidden file.
        #expect(throws: RegistryEditError.self) { try target("k", "\(dir)/d/sub/x.yaml", ["\(dir)/d/*.yaml"]) }
        #expect(throws: RegistryEditError.self) { try target("k", "\(dir)/d/.x.yaml", ["\(dir)/d/*.yaml"]) }
        // Patterns that name no single file need --file.
        for pattern in ["\(dir)/d/site-*.yaml", "\(dir)/*/devices.yaml", "\(dir)/d/*", "\(dir)/d/*.y?ml"] {
            #expect(throws: RegistryEditError.needsFile(id: "k", pattern: pattern)) { try target("k", nil, [pattern]) }
        }
        #expect(throws: RegistryEditError.notConfigured) { try target("k", nil, []) }
    }

    // MARK: Store

    @Test func aReplacedFileKeepsItsModeAndASymlinkStaysALink() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let real = try fixture.write("real/site.yaml", "devices:\n  - id: a\n    psk: \(Self.psk)\n")
        chmod(real, 0o640)
        let link = fixture.directory.appendingPathComponent("devices/site.yaml").path
        try FileManager.default.createDirectory(atPath: (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "../real/site.yaml")
        let store = try RegistryStore(patterns: [fixture.directory.appendingPathComponent("devices/*.yaml").path])

        let change = try store.setDisabled(true, id: "a")
        #expect(change == RegistryChange(file: link, kind: .updated, line: 2))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == "../real/site.yaml")
        #expect(String(decoding: FileManager.default.contents(atPath: real) ?? Data(), as: UTF8.self)
            == "devices:\n  - id: a\n    psk: \(Self.psk)\n    disabled: true\n")
        var status = stat()
        stat(real, &status)
        #expect(status.st_mode & 0o777 == 0o640)
        #expect(try store.setDisabled(true, id: "a").kind == .unchanged)
    }

    @Test func anEditThatBreaksTheRegistryIsRefusedWithLocatedProblems() throws {
        let fixture = try ConfigFixture()
        defer { fixture.remove() }
        let site = try fixture.write("devices/site.yaml", "devices:\n  - id: b\n    cert_name: n.example\n")
        let store = try RegistryStore(patterns: [fixture.directory.appendingPathComponent("devices/*.yaml").path])
        let before = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.appendingPathComponent("devices").path)
        do {
            _ = try store.add(NewDevice(id: "c", certificateName: "n.example"), to: site)
            Issue.record("added a device whose cert_name is taken")
        } catch {
            guard case .invalidRegistry(let issues, let preexisting) = error else { Issue.record("\(error)"); return }
            #expect(!preexisting)
            #expect(issues.map { "\($0.location.line): \($0.message)" } == ["5: cert_name 'n.example' already belongs to device 'b'"])
            #expect(issues.first?.location.file.hasSuffix("devices/site.yaml") == true)
        }
        #expect(throws: RegistryEditError.self) { try store.add(NewDevice(id: "b", tokenHash: Secrets.tokenHash("x")), to: site) }
        let after = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.appendingPathComponent("devices").path)
        #expect(Set(after) == Set(before + [RegistryStore.lockFileName]))
        #expect(String(decoding: FileManager.default.contents(atPath: site) ?? Data(), as: UTF8.self)
            == "devices:\n  - id: b\n    cert_name: n.example\n")
    }
}
