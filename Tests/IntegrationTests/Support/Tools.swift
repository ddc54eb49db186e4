import Foundation

/// The external programs the integration tests drive, looked up on PATH.
enum Tools {
    static let mosquitto = "mosquitto"
    static let mosquittoSub = "mosquitto_sub"
    static let mosquittoPub = "mosquitto_pub"
    /// Debian's libcoap3-bin has no plain `coap-client`.
    static let coapClient = "coap-client-notls"
    /// The same client built with OpenSSL, for DTLS (PSK and certificates).
    static let coapClientDTLS = "coap-client-openssl"
    static let curl = "curl"
    static let openssl = "openssl"
    static let systemdAnalyze = "systemd-analyze"

    /// Full path of a program, from PATH (plus the sbin directories, where
    /// Debian puts mosquitto).
    static func find(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/local/sbin"]
        for directory in directories {
            let candidate = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Like `find`, but a missing program is an error that says how to get it.
    static func require(_ name: String) throws -> String {
        if let found = find(name) { return found }
        throw HarnessError("'\(name)' is not installed (PATH or /usr/sbin); run .ci/setup")
    }
}

/// Where the `iot-gateway` executable under test is.
enum GatewayBinary {
    /// `IOT_GATEWAY_BIN` if set; otherwise next to the test bundle (SwiftPM
    /// puts both in the same bin directory, whatever the scratch path); then
    /// the package's `.build/debug`.
    static func path() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["IOT_GATEWAY_BIN"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw HarnessError("IOT_GATEWAY_BIN=\(explicit) is not an executable file")
            }
            return explicit
        }
        var candidates: [URL] = []
        var directories: [URL] = []
        if let executable = Bundle.main.executableURL { directories.append(executable.deletingLastPathComponent()) }
        if let first = CommandLine.arguments.first, first.contains("/") {
            directories.append(URL(fileURLWithPath: first).standardizedFileURL.deletingLastPathComponent())
        }
        // macOS: .../debug/iot-gatewayPackageTests.xctest/Contents/MacOS/…
        directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for directory in directories {
            var current = directory
            for _ in 0..<4 {
                candidates.append(current.appendingPathComponent("iot-gateway"))
                current = current.deletingLastPathComponent()
            }
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/iot-gateway"))
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory),
               !isDirectory.boolValue, FileManager.default.isExecutableFile(atPath: candidate.path) {
                return candidate.path
            }
        }
        let tried = candidates.map(\.path).joined(separator: "\n  ")
        throw HarnessError("""
            iot-gateway executable not found; build it first (swift build) or set IOT_GATEWAY_BIN. Tried:
              \(tried)
            """)
    }

    /// The package root, for the example files (mappings/, systemd/).
    /// (This file is Tests/IntegrationTests/Support/Tools.swift.)
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }
}
