import Foundation
import Testing
@testable import GatewayCore

/// Registry files in a temporary directory.
struct RegistryFixture {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    @discardableResult
    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let url = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        return url.path
    }

    var settings: DeviceSettings {
        DeviceSettings(files: [directory.appendingPathComponent("devices/*.yaml").path])
    }

    /// `LINE:COLUMN: message` of each problem, file name dropped.
    func problems() -> [String] {
        do {
            _ = try RegistryLoader.load(settings)
            return []
        } catch {
            return error.issues.map { "\($0.location.line):\($0.location.column): \($0.message)" }
        }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// Hex of a text's bytes: how a text PSK is stored.
func hexOfText(_ text: String) -> String { Hex.encode(Array(text.utf8)) }

@Suite("Device registry")
struct DeviceRegistryTests {
    static let token = "tok-kitchen-1"
    static let fingerprint = String(repeating: "ab", count: 32)

    @Test func loadsEveryKindOfCredentialAndIndexesThem() throws {
        let fixture = try RegistryFixture()
        defer { fixture.remove() }
        try fixture.write("devices/a.yaml", """
            devices:
              - id: kitchen-1
                groups: [kitchen, sensors]
                psk: \(hexOfText("secret-key"))
                token_sha256: \(Secrets.tokenHash(Self.token).hex)
              - id: meter-7
                cert_sha256: "\(Digest(hex: Self.fingerprint)!.fingerprintText)"
                cert_name: meter-7.devices.example
                disabled: true
            """)
        let loaded = try RegistryLoader.load(fixture.settings)
        #expect(loaded.warnings.isEmpty)
        let registry = loaded.registry
        #expect(registry.count == 2)
        let kitchen = try #require(registry.device(id: "kitchen-1"))
        #expect(kitchen.groups == ["kitchen", "sensors"])
        #expect(kitchen.psk == Array("secret-key".utf8))
        #expect(registry.device(tokenHash: Secrets.tokenHash(Self.token))?.id == "kitchen-1")
        #expect(registry.device(tokenHash: Secrets.tokenHash("other")) == nil)
        let meter = try #require(registry.device(id: "meter-7"))
        #expect(meter.disabled)
        let pinned = PeerCertificate(fingerprint: Digest(hex: Self.fingerprint)!, names: ["whatever"])
        #expect(registry.device(certificate: pinned)?.id == "meter-7")
        let named = PeerCertificate(fingerprint: Digest.sha256([1]), names: ["x", "meter-7.devices.example"])
        #expect(registry.device(certificate: named)?.id == "meter-7")
        #expect(registry.device(certificate: PeerCertificate(fingerprint: Digest.sha256([2]), names: ["kitchen-1"])) == nil)
    }

    @Test func everyProblemHasItsLineAndColumn() throws {
        let fixture = try RegistryFixture()
        defer { fixture.remove() }
        try fixture.write("devices/a.yaml", """
            devices:
              - id: ok-1
                psk: 0011
              - id: ok-1
                psk: zz
              - id: "bad id"
                token_sha256: 1234
              - id: ok-2
                pks: 00
                cert_sha256: [nothex]
            """)
        let problems = fixture.problems()
        #expect(problems.contains("4:9: duplicate device id 'ok-1' (first defined at \(FilePaths.display(fixture.directory.appendingPathComponent("devices/a.yaml").path)):2:9)"), "\(problems)")
        #expect(problems.contains { $0.hasPrefix("5:10: psk of device") && $0.contains("hex") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("6:9: device id 'bad id'") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("7:19: token_sha256") }, "\(problems)")
        #expect(problems.contains("9:5: unknown key 'pks' in a device (did you mean 'psk'?)"), "\(problems)")
        #expect(problems.contains { $0.hasPrefix("10:19: cert_sha256") }, "\(problems)")
    }

    @Test func aPSKFileOthersMayReadIsRefused() throws {
        let fixture = try RegistryFixture()
        defer { fixture.remove() }
        try fixture.write("devices/a.yaml", """
            devices:
              - id: d1
                psk: \(hexOfText("k"))
            """, mode: 0o644)
        let problems = fixture.problems()
        #expect(problems == ["3:10: this file holds a pre-shared key but every user may read it (mode 644); chmod 600 it"], "\(problems)")
    }

    @Test func sharedCredentialsAreRefused() throws {
        let fixture = try RegistryFixture()
        defer { fixture.remove() }
        let hash = Secrets.tokenHash("same").hex
        try fixture.write("devices/a.yaml", "devices:\n  - id: a\n    token_sha256: \(hash)\n    cert_name: n\n")
        try fixture.write("devices/b.yaml", "devices:\n  - id: b\n    token_sha256: \(hash)\n    cert_name: n\n")
        let problems = fixture.problems()
        #expect(problems.contains("3:19: device 'b' has the same token as device 'a'"), "\(problems)")
        #expect(problems.contains("4:16: cert_name 'n' already belongs to device 'a'"), "\(problems)")
    }

    @Test func aDeviceWithoutCredentialsIsAWarningAndEmptyFilesAreFine() throws {
        let fixture = try RegistryFixture()
        defer { fixture.remove() }
        try fixture.write("devices/a.yaml", "devices:\n  - id: lonely\n")
        try fixture.write("devices/b.yaml", "")
        try fixture.write("devices/c.yaml", "devices:\n")
        let loaded = try RegistryLoader.load(fixture.settings)
        #expect(loaded.registry.count == 1)
        #expect(loaded.warnings.map(\.message) == ["device 'lonely' has no credentials (psk, token_sha256, cert_sha256 or cert_name): it cannot authenticate"])
    }

    @Test func aGlobThatMatchesNothingIsAWarningAMissingFileAnError() throws {
        let fixture = try RegistryFixture()
        defer { fixture.remove() }
        let loaded = try RegistryLoader.load(fixture.settings)
        #expect(loaded.registry.isEmpty)
        #expect(loaded.warnings.count == 1 && loaded.warnings[0].message.contains("matches no file yet"))
        let missing = DeviceSettings(files: [fixture.directory.appendingPathComponent("nope.yaml").path])
        #expect(throws: ConfigError.self) { try RegistryLoader.load(missing) }
    }

    @Test(arguments: ["kitchen-1", "a", "A.b:c_d-9", String(repeating: "x", count: 64)])
    func validIDs(_ id: String) {
        #expect(DeviceID.problem(id) == nil)
    }

    @Test(arguments: ["", "a b", "a/b", "a+b", "a#b", "$x", ".x", "-x", "ü", String(repeating: "x", count: 65)])
    func invalidIDs(_ id: String) {
        #expect(DeviceID.problem(id) != nil)
    }
}

@Suite("Device secrets")
struct SecretsTests {
    @Test func generatedPSKsAreTextAndDistinct() {
        let keys = (0..<50).map { _ in Secrets.newPSK() }
        #expect(Set(keys).count == 50)
        for key in keys {
            #expect(key.count == Secrets.pskLength)
            #expect(key.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII })
            // Stored as the hex of exactly the printed text's bytes.
            #expect(Hex.decode(hexOfText(key)) == Array(key.utf8))
        }
    }

    @Test func tokensCarry256BitsAndOnlyTheirHashIsKept() {
        let token = Secrets.newToken()
        #expect(token.count == 43)
        #expect(Data(base64Encoded: token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "=")?.count == 32)
        #expect(Secrets.tokenHash(token) == Secrets.tokenHash(token))
        #expect(Secrets.tokenHash(token) != Secrets.tokenHash(Secrets.newToken()))
    }

    @Test func digestsParseOpenSSLFingerprintsAndHex() {
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        let digest = Digest(hex: hex)
        #expect(digest?.hex == hex)
        #expect(Digest(hex: digest!.fingerprintText) == digest)
        #expect(Digest(hex: hex.uppercased()) == digest)
        #expect(Digest(hex: "abcd") == nil)
        #expect(Digest(hex: String(hex.dropLast()) + "g") == nil)
    }

    @Test func constantTimeComparisonCompares() {
        #expect(Secrets.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Secrets.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Secrets.constantTimeEquals([1, 2], [1, 2, 3]))
    }
}
