import Foundation
import GatewayCore
import Testing

/// `iot-gateway devices add | list | disable | enable | remove`, run as the
/// real binary against registry files on disk.
@Suite("devices commands")
struct DevicesCommandTests {
    /// A configuration (the test PKI's certificates, copied: the loader
    /// parses them; DTLS and HTTPS listeners, one device mapping) whose
    /// registry is `devices/*.yaml`.
    struct Fixture {
        let directory: TemporaryDirectory
        let config: String

        init(_ label: String, files: String = "[\"devices/*.yaml\"]") async throws {
            directory = try TemporaryDirectory("devices-\(label)")
            let pki = try await TestCertificates.shared()
            let sources = [
                "ca.pem": pki.caFile, "client.pem": pki.gateway.certificate, "client.key": pki.gateway.key,
                "https.pem": pki.server.certificate, "https.key": pki.server.key,
            ]
            for (name, source) in sources {
                try FileManager.default.copyItem(atPath: source, toPath: directory.file(name))
                chmod(directory.file(name), 0o600)
            }
            config = try directory.write("""
                gateway:
                  name: gw-devices
                  state_dir: state
                upstream:
                  host: localhost
                  port: 8883
                  profile: generic
                  tls:
                    ca_file: ca.pem
                    cert_file: client.pem
                    key_file: client.key
                devices:
                  files: \(files)
                coap:
                  listen: ["127.0.0.1:15683"]
                  dtls:
                    listen: ["127.0.0.1:15684"]
                http:
                  listen: ["127.0.0.1:18080"]
                  tls:
                    listen: ["0.0.0.0:18443"]
                    cert_file: https.pem
                    key_file: https.key
                mappings:
                  - name: temperature
                    resource: /sensors/{device}/temperature
                    identity: device
                    topic: dt/sensors/{device}/temperature

                """, to: "gateway.yaml")
        }

        func remove() { directory.remove() }

        func run(_ arguments: [String]) async throws -> ProcessResult {
            try await ProcessRunner.run(try GatewayBinary.path(), arguments + ["--config", config], timeout: .seconds(30))
        }

        func devices(_ arguments: String...) async throws -> ProcessResult {
            try await run(["devices"] + arguments)
        }

        func path(_ name: String) -> String { directory.file(name) }

        func text(_ name: String) -> String? {
            FileManager.default.contents(atPath: path(name)).map { String(decoding: $0, as: UTF8.self) }
        }

        /// Writes a registry file, mode 0600.
        @discardableResult
        func registry(_ name: String, _ text: String) throws -> String {
            _ = try directory.subdirectory((name as NSString).deletingLastPathComponent)
            let file = try directory.write(text, to: name)
            chmod(file, 0o600)
            return file
        }

        /// Every file under the directory and its content, to show nothing
        /// changed (the lock file aside: it holds nothing).
        func snapshot() -> [String: String] {
            var files: [String: String] = [:]
            let enumerator = FileManager.default.enumerator(atPath: directory.path)
            while let name = enumerator?.nextObject() as? String {
                if name.hasSuffix(RegistryStore.lockFileName) { continue }
                var isDirectory: ObjCBool = false
                let full = path(name)
                if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                    files[name] = text(name) ?? ""
                }
            }
            return files
        }
    }

    static func mode(_ path: String) -> Int {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_mode & 0o777) : -1
    }

    static func occurrences(_ needle: String, in haystack: String) -> Int {
        haystack.components(separatedBy: needle).count - 1
    }

    static let hash = String(repeating: "ab", count: 32)

    @Test("add --psk --token prints each secret once, stores the PSK as hex and the token only as its hash, mode 0600")
    func addPrintsSecretsOnce() async throws {
        let fixture = try await Fixture("add")
        defer { fixture.remove() }
        let result = try await fixture.devices("add", "kitchen-1", "--psk", "--token", "--groups", "kitchen,sensors")
        #expect(result.succeeded, "\(result.summary)")
        let output = result.stdoutText
        let psk = try #require(output.firstMatch(of: /PSK='([A-Za-z0-9]{32})'/).map { String($0.1) }, "\(output)")
        let token = try #require(output.firstMatch(of: /TOKEN='([A-Za-z0-9_-]{43})'/).map { String($0.1) }, "\(output)")
        #expect(Self.occurrences(psk, in: output) == 1)
        #expect(Self.occurrences(token, in: output) == 1)
        #expect(!result.stderrText.contains(psk) && !result.stderrText.contains(token))
        // Ready to paste: the DTLS and HTTPS ports and the device's resource.
        #expect(output.contains("coap-client-openssl -m post -u kitchen-1 -k \"$PSK\""), "\(output)")
        #expect(output.contains("coaps://127.0.0.1:15684/sensors/kitchen-1/temperature"), "\(output)")
        #expect(output.contains("-H \"Authorization: Bearer $TOKEN\""), "\(output)")
        #expect(output.contains("https://GATEWAY:18443/sensors/kitchen-1/temperature"), "\(output)")
        #expect(output.contains("within seconds"), "\(output)")

        let file = fixture.path("devices/kitchen-1.yaml")
        let stored = try #require(fixture.text("devices/kitchen-1.yaml"))
        #expect(stored == """
            devices:
              - id: kitchen-1
                groups: [kitchen, sensors]
                psk: \(Hex.encode(Array(psk.utf8)))
                token_sha256: \(Secrets.tokenHash(token).hex)

            """)
        #expect(!stored.contains(psk) && !stored.contains(token))
        #expect(Self.mode(file) == 0o600)
        #expect(Self.mode(fixture.path("devices")) == 0o700)

        // The gateway takes the registry as written.
        let check = try await GatewayProcess.checkConfig(fixture.config)
        #expect(check.succeeded, "\(check.summary)")
        let loaded = try RegistryLoader.load(DeviceSettings(files: [file])).registry
        #expect(loaded.device(id: "kitchen-1")?.psk == Array(psk.utf8))
        #expect(loaded.device(tokenHash: Secrets.tokenHash(token))?.id == "kitchen-1")
    }

    @Test("add needs a credential and a valid id, and refuses an id that exists in any file")
    func addRefusals() async throws {
        let fixture = try await Fixture("add-refused")
        defer { fixture.remove() }
        try fixture.registry("devices/site.yaml", "devices:\n  - id: meter-7\n    token_sha256: \(Self.hash)\n")
        let before = fixture.snapshot()

        let duplicate = try await fixture.devices("add", "meter-7", "--psk")
        #expect(!duplicate.succeeded)
        #expect(duplicate.stderrText.contains("device 'meter-7' already exists at") && duplicate.stderrText.contains("site.yaml:2"),
                "\(duplicate.summary)")
        let viaFile = try await fixture.devices("add", "meter-7", "--psk", "--file", fixture.path("devices/other.yaml"))
        #expect(!viaFile.succeeded && viaFile.stderrText.contains("already exists"), "\(viaFile.summary)")
        #expect(!viaFile.stdoutText.contains("PSK="), "a secret printed for a refused add: \(viaFile.summary)")

        let noCredential = try await fixture.devices("add", "new-1")
        #expect(!noCredential.succeeded && noCredential.stderrText.contains("at least one credential"), "\(noCredential.summary)")
        let badID = try await fixture.devices("add", "bad id", "--psk")
        #expect(!badID.succeeded && badID.stderrText.contains("may contain only"), "\(badID.summary)")
        let outside = try await fixture.devices("add", "new-2", "--psk", "--file", fixture.path("elsewhere.yaml"))
        #expect(!outside.succeeded && outside.stderrText.contains("not matched by devices.files"), "\(outside.summary)")
        #expect(fixture.snapshot() == before)
    }

    @Test("list shows ids, groups, state, credential kinds and FILE:LINE, never a secret or hash")
    func listShowsNoSecrets() async throws {
        let fixture = try await Fixture("list")
        defer { fixture.remove() }
        let first = try await fixture.devices("add", "a", "--psk", "--groups", "g1,g2")
        let second = try await fixture.devices("add", "b", "--token", "--cert-sha256", Self.hash.uppercased())
        try #require(first.succeeded && second.succeeded, "\(first.summary)\n\(second.summary)")
        let psk = try #require(first.stdoutText.firstMatch(of: /PSK='(\w+)'/).map { String($0.1) })
        let token = try #require(second.stdoutText.firstMatch(of: /TOKEN='([\w-]+)'/).map { String($0.1) })
        let secrets = [psk, Hex.encode(Array(psk.utf8)), token, Secrets.tokenHash(token).hex, Self.hash]

        let list = try await fixture.devices("list")
        #expect(list.succeeded, "\(list.summary)")
        let lines = list.stdoutText.split(separator: "\n").map(String.init)
        let rowA = try #require(lines.first { $0.hasPrefix("a ") }, "\(list.summary)")
        let rowB = try #require(lines.first { $0.hasPrefix("b ") }, "\(list.summary)")
        #expect(rowA.contains("g1,g2") && rowA.contains("enabled") && rowA.contains("psk") && rowA.contains("a.yaml:2"), "\(rowA)")
        #expect(rowB.contains("token,certificate") && rowB.contains("b.yaml:2"), "\(rowB)")

        let json = try await fixture.devices("list", "--json")
        #expect(json.succeeded, "\(json.summary)")
        let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let devices = try #require(object["devices"] as? [[String: Any]])
        #expect(devices.map { $0["id"] as? String } == ["a", "b"])
        #expect(devices[0]["groups"] as? [String] == ["g1", "g2"])
        #expect(devices[1]["credentials"] as? [String] == ["token", "certificate"])
        #expect(devices[0]["state"] as? String == "enabled" && devices[0]["line"] as? Int == 2)
        for output in [list.stdoutText, list.stderrText, json.stdoutText, json.stderrText] {
            for secret in secrets {
                #expect(!output.lowercased().contains(secret.lowercased()), "list shows a secret or hash: \(output)")
            }
        }
    }

    @Test("list of an invalid registry exits 1 with FILE:LINE:COLUMN lines")
    func listOfAnInvalidRegistry() async throws {
        let fixture = try await Fixture("list-invalid")
        defer { fixture.remove() }
        try fixture.registry("devices/bad.yaml", "devices:\n  - id: x\n    psk: 00\n    colour: red\n")
        let list = try await fixture.devices("list")
        #expect(list.status == .exited(1), "\(list.summary)")
        let hit = list.stderrText.split(separator: "\n").contains { $0.contains(/bad\.yaml:4:5: error: unknown key 'colour'/) }
        #expect(hit, "\(list.summary)")
    }

    /// An operator's file: comments, blank lines, four-space indentation.
    static let siteFile = """
        # Site A. Owner: ops
        devices:
            # kitchen
            -   id: a
                psk: 6b6579   # rotated 2024

            -   id: b
                token_sha256: \(hash)

            -   id: c
                cert_name: c.devices.example
                disabled: false
        # end

        """

    @Test("disable, enable and remove change exactly the entry; unknown ids exit 1")
    func editsChangeExactlyTheEntry() async throws {
        let fixture = try await Fixture("edit")
        defer { fixture.remove() }
        let file = try fixture.registry("devices/site.yaml", Self.siteFile)

        let disable = try await fixture.devices("disable", "b")
        #expect(disable.succeeded && disable.stdoutText.contains("within seconds"), "\(disable.summary)")
        let disabledB = Self.siteFile.replacingOccurrences(
            of: "token_sha256: \(Self.hash)\n", with: "token_sha256: \(Self.hash)\n        disabled: true\n")
        #expect(fixture.text("devices/site.yaml") == disabledB)
        let again = try await fixture.devices("disable", "b")
        #expect(again.succeeded && again.stdoutText.contains("already disabled"), "\(again.summary)")
        #expect(fixture.text("devices/site.yaml") == disabledB)

        let disableC = try await fixture.devices("disable", "c")
        #expect(disableC.succeeded, "\(disableC.summary)")
        let disabledBC = disabledB.replacingOccurrences(of: "disabled: false", with: "disabled: true")
        #expect(fixture.text("devices/site.yaml") == disabledBC)

        let list = try await fixture.devices("list", "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [String: Any])
        let states = (object["devices"] as? [[String: Any]])?.map { $0["state"] as? String }
        #expect(states == ["enabled", "disabled", "disabled"], "\(list.summary)")

        let enable = try await fixture.devices("enable", "b")
        #expect(enable.succeeded, "\(enable.summary)")
        #expect(fixture.text("devices/site.yaml") == disabledBC.replacingOccurrences(
            of: "disabled: true\n\n", with: "disabled: false\n\n"))

        let remove = try await fixture.devices("remove", "a")
        #expect(remove.succeeded, "\(remove.summary)")
        let removedA = disabledBC
            .replacingOccurrences(of: "disabled: true\n\n", with: "disabled: false\n\n")
            .replacingOccurrences(of: "    # kitchen\n    -   id: a\n        psk: 6b6579   # rotated 2024\n\n", with: "")
        #expect(fixture.text("devices/site.yaml") == removedA)
        #expect(Self.mode(file) == 0o600)

        for command in ["disable", "enable", "remove"] {
            let unknown = try await fixture.devices(command, "nobody")
            #expect(unknown.status == .exited(1) && unknown.stderrText.contains("no device 'nobody'"), "\(unknown.summary)")
        }
        #expect(fixture.text("devices/site.yaml") == removedA)
        let check = try await GatewayProcess.checkConfig(fixture.config)
        #expect(check.succeeded, "\(check.summary)")
    }

    @Test("remove of a one-device file's device deletes the file; of a file named literally keeps `devices: []`")
    func removeTheOnlyDevice() async throws {
        let fixture = try await Fixture("remove-only")
        defer { fixture.remove() }
        let add = try await fixture.devices("add", "solo", "--token")
        #expect(add.succeeded, "\(add.summary)")
        #expect(fixture.text("devices/solo.yaml") != nil)
        let remove = try await fixture.devices("remove", "solo")
        #expect(remove.succeeded && remove.stdoutText.contains("deleted"), "\(remove.summary)")
        #expect(fixture.text("devices/solo.yaml") == nil)

        let literal = try await Fixture("remove-literal", files: "[\"registry.yaml\"]")
        defer { literal.remove() }
        // The first add creates the file the configuration names.
        let first = try await literal.devices("add", "solo", "--token")
        #expect(first.succeeded, "\(first.summary)")
        let removed = try await literal.devices("remove", "solo")
        #expect(removed.succeeded, "\(removed.summary)")
        #expect(literal.text("registry.yaml") == "devices: []\n")
        let check = try await GatewayProcess.checkConfig(literal.config)
        #expect(check.succeeded, "\(check.summary)")
    }

    @Test("8 concurrent adds into one file all land")
    func concurrentAdds() async throws {
        let fixture = try await Fixture("concurrent")
        defer { fixture.remove() }
        let file = try fixture.registry("devices/site.yaml", "# shared\ndevices:\n  - id: first\n    token_sha256: \(Self.hash)\n")
        let results = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
            for index in 1...8 {
                group.addTask { try await fixture.devices("add", "d\(index)", "--token", "--psk", "--file", file) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for result in results { #expect(result.succeeded, "\(result.summary)") }
        let registry = try RegistryLoader.load(DeviceSettings(files: [file])).registry
        #expect(Set(registry.devices.map(\.id)) == Set(["first"] + (1...8).map { "d\($0)" }))
        #expect(fixture.text("devices/site.yaml")?.hasPrefix("# shared\ndevices:\n  - id: first\n") == true)
        // No temporary file is left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: fixture.path("devices"))
        #expect(Set(names) == ["site.yaml", RegistryStore.lockFileName], "\(names)")
    }

    @Test("an edit that would make the registry invalid is refused and nothing changes")
    func invalidEditRefused() async throws {
        let fixture = try await Fixture("invalid-edit")
        defer { fixture.remove() }
        try fixture.registry("devices/site.yaml", Self.siteFile)
        let before = fixture.snapshot()

        // The fingerprint belongs to no one, the certificate name to device c.
        let taken = try await fixture.devices("add", "x", "--psk", "--cert-name", "c.devices.example")
        #expect(taken.status == .exited(1), "\(taken.summary)")
        #expect(taken.stderrText.contains(/x\.yaml:\d+:\d+: cert_name 'c.devices.example' already belongs to device 'c'/), "\(taken.summary)")
        #expect(taken.stderrText.contains("nothing was changed"), "\(taken.summary)")
        #expect(!taken.stdoutText.contains("PSK="), "\(taken.summary)")
        let intoSite = try await fixture.devices("add", "x", "--token", "--cert-name", "c.devices.example", "--file", fixture.path("devices/site.yaml"))
        #expect(intoSite.status == .exited(1) && intoSite.stderrText.contains("site.yaml:"), "\(intoSite.summary)")
        #expect(fixture.snapshot() == before)

        // A broken file elsewhere: edits are refused until it is fixed.
        try fixture.registry("devices/broken.yaml", "devices:\n  - id: y\n    psk: zz\n")
        let broken = fixture.snapshot()
        let disable = try await fixture.devices("disable", "a")
        #expect(disable.status == .exited(1), "\(disable.summary)")
        #expect(disable.stderrText.contains(/broken\.yaml:3:\d+: psk/), "\(disable.summary)")
        #expect(disable.stderrText.contains("already has these problems"), "\(disable.summary)")
        #expect(fixture.snapshot() == broken)
    }
}
