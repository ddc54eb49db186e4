import Foundation
import Testing

/// `systemd/iot-gateway.service`: accepted by `systemd-analyze verify`, says
/// what the gateway's notify/watchdog/reload contract needs, and stays
/// hardened (`systemd-analyze security` exposure 2.0 or less). Where
/// systemd-analyze is missing these are skipped (reported as such), never
/// counted as a pass; .ci/setup installs it for CI.
@Suite("systemd unit")
struct SystemdUnitTests {
    static let unit = GatewayBinary.packageRoot.appendingPathComponent("systemd/iot-gateway.service")
    static let config = "--config /etc/iot-gateway/gateway.yaml"
    static let hasAnalyze = Tools.find(Tools.systemdAnalyze) != nil

    static func text() throws -> String {
        try #require(FileManager.default.contents(atPath: unit.path).map { String(decoding: $0, as: UTF8.self) },
                     "missing \(unit.path)")
    }

    /// The values of every `KEY=` line in [Service], in order.
    static func values(_ key: String, in text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            line.hasPrefix("\(key)=") ? String(line.dropFirst(key.count + 1)) : nil
        }
    }

    @Test("the unit runs /usr/bin/iot-gateway as Type=notify with watchdog, config check and SIGHUP reload")
    func contract() throws {
        let text = try Self.text()
        #expect(Self.values("Type", in: text) == ["notify"])
        #expect(Self.values("NotifyAccess", in: text) == ["main"])
        #expect(Self.values("WatchdogSec", in: text) == ["30s"])
        #expect(Self.values("ExecStart", in: text) == ["/usr/bin/iot-gateway run \(Self.config)"])
        #expect(Self.values("ExecStartPre", in: text) == ["/usr/bin/iot-gateway check-config \(Self.config)"])
        #expect(Self.values("ExecReload", in: text) == ["/bin/kill -HUP $MAINPID"])
        #expect(Self.values("TimeoutStartSec", in: text) == ["5min"])
        #expect(Self.values("StateDirectory", in: text) == ["iot-gateway"])
        #expect(Self.values("Restart", in: text) == ["on-failure"])
        #expect(Self.values("User", in: text) == ["iot-gateway"])
        // The broker must stay reachable and the notify socket and journal usable.
        #expect(Self.values("RestrictAddressFamilies", in: text) == ["AF_INET AF_INET6 AF_UNIX"])
        #expect(Self.values("IPAddressDeny", in: text).isEmpty && Self.values("PrivateNetwork", in: text).isEmpty)
    }

    @Test("systemd-analyze verify accepts the unit (its commands pointed at the built binary)",
          .enabled(if: hasAnalyze, "systemd-analyze is not installed"))
    func verify() async throws {
        let original = try Self.text()
        // verify checks that each command's program exists and is executable;
        // the unit names the installed path, so check a copy that names the
        // binary just built, with everything else unchanged.
        let binary = try GatewayBinary.path()
        var lines = original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var rewritten = 0
        for index in lines.indices {
            guard let key = ["ExecStartPre=", "ExecStart="].first(where: { lines[index].hasPrefix($0) }) else { continue }
            let command = lines[index].dropFirst(key.count)
            // Optional prefixes: - @ : + ! !!
            let prefix = command.prefix { "-@:+!".contains($0) }
            let rest = command.dropFirst(prefix.count)
            let program = rest.prefix { $0 != " " }
            #expect(program == "/usr/bin/iot-gateway", "\(key) runs \(program)")
            lines[index] = "\(key)\(prefix)\(binary)\(rest.dropFirst(program.count))"
            rewritten += 1
        }
        #expect(rewritten == 2, "ExecStartPre= and ExecStart= lines: \(rewritten)")

        let directory = try TemporaryDirectory("systemd")
        defer { directory.remove() }
        let copy = try directory.write(lines.joined(separator: "\n"), to: "iot-gateway.service")
        let result = try await ProcessRunner.run(Tools.systemdAnalyze, ["verify", copy], timeout: .seconds(60))
        #expect(result.succeeded, "systemd-analyze verify failed:\n\(result.summary)")
        // Warnings (unknown keys, bad values) do not change the exit status:
        // any line about our unit is a problem.
        let complaints = (result.stderrText + result.stdoutText).split(separator: "\n")
            .filter { $0.contains("iot-gateway.service") || $0.contains(directory.path) }
        #expect(complaints.isEmpty, "systemd-analyze verify complained:\n\(complaints.joined(separator: "\n"))")
    }

    @Test("systemd-analyze security rates the unit's exposure 2.0 or less",
          .enabled(if: hasAnalyze, "systemd-analyze is not installed"))
    func exposure() async throws {
        let result = try await ProcessRunner.run(
            Tools.systemdAnalyze, ["security", "--offline=yes", "--no-pager", Self.unit.path], timeout: .seconds(60))
        // It exits non-zero only past --threshold (default 100), so a failure
        // here is a real error.
        #expect(result.succeeded, "systemd-analyze security failed:\n\(result.summary)")
        // "→ Overall exposure level for iot-gateway.service: 1.2 OK 🙂"
        let line = try #require(result.stdoutText.split(separator: "\n").first { $0.contains("Overall exposure level") },
                                "no 'Overall exposure level' line:\n\(result.summary)")
        let match = try #require(line.firstMatch(of: /iot-gateway\.service: (\d+\.\d+)/), "unparsable: \(line)")
        let exposure = try #require(Double(match.1), "unparsable: \(line)")
        #expect(exposure <= 2.0, "exposure \(exposure) > 2.0:\n\(result.stdoutText)")
        // Unknown or misspelt directives are ignored by the rating, not reported.
        #expect(!result.stderrText.contains("Unknown key"), "\(result.stderrText)")
    }
}
