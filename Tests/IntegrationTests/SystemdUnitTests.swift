import Foundation
import Testing

/// `systemd/iot-gateway.service` is accepted by `systemd-analyze verify`.
/// Where systemd-analyze is missing the test is skipped (reported as such),
/// never counted as a pass.
@Suite("systemd unit")
struct SystemdUnitTests {
    static let unit = GatewayBinary.packageRoot.appendingPathComponent("systemd/iot-gateway.service")

    @Test("systemd-analyze verify accepts the unit (ExecStart pointed at the built binary)",
          .enabled(if: Tools.find(Tools.systemdAnalyze) != nil, "systemd-analyze is not installed"))
    func verify() async throws {
        let original = try #require(FileManager.default.contents(atPath: Self.unit.path).map { String(decoding: $0, as: UTF8.self) },
                                    "missing \(Self.unit.path)")
        // verify checks that ExecStart's program exists and is executable;
        // the unit names the installed path, so check a copy that names the
        // binary just built, with everything else unchanged.
        let binary = try GatewayBinary.path()
        var lines = original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var execStarts = 0
        for index in lines.indices where lines[index].hasPrefix("ExecStart=") {
            execStarts += 1
            let command = lines[index].dropFirst("ExecStart=".count)
            // Optional prefixes: - @ : + ! !!
            let prefix = command.prefix { "-@:+!".contains($0) }
            let rest = command.dropFirst(prefix.count)
            let program = rest.prefix { $0 != " " }
            #expect(program.hasSuffix("/iot-gateway"), "ExecStart runs \(program)")
            let arguments = rest.dropFirst(program.count)
            #expect(arguments.contains("run") && arguments.contains("--config /etc/iot-gateway/gateway.yaml"),
                    "ExecStart arguments: \(arguments)")
            lines[index] = "ExecStart=\(prefix)\(binary)\(arguments)"
        }
        #expect(execStarts == 1, "ExecStart= lines: \(execStarts)")
        #expect(original.contains("StateDirectory=iot-gateway"), "no StateDirectory=iot-gateway")
        #expect(original.contains("Restart=on-failure"), "no Restart=on-failure")
        #expect(original.contains(/(?m)^User=\S+/) || original.contains(/(?m)^DynamicUser=(yes|true)/), "no User= or DynamicUser=")

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
}
