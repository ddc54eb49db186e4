import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A damaged outbox stops the gateway for good (exit 65, which the unit's
/// RestartPreventExitStatus keeps systemd from restarting into) with one
/// line that names the way out; `queue recover` is that way out.
@Suite("A damaged outbox")
struct DamagedStateTests {
    @Test("not a database: exit 65 and one line naming queue recover; recover keeps it aside; the gateway starts again")
    func notADatabase() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory("damaged-state")
        defer { directory.remove() }
        let gateway = try GatewayProcess(brokerPort: try LoopbackPorts.tcp(), certificates: certificates, directory: directory)
        let database = gateway.stateDirectory + "/outbox.sqlite"
        try Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 131) }).write(to: URL(fileURLWithPath: database))

        let binary = try GatewayBinary.path()
        let failed = try await ProcessRunner.run(binary, ["run", "--config", gateway.configPath], timeout: .seconds(30))
        #expect(failed.status == .exited(65), "\(failed.summary)")
        let lines = failed.stderrText.split(separator: "\n").filter { $0.contains("is damaged") }
        #expect(lines.count == 2, "the log line and the error line: \(failed.stderrText)")
        #expect(lines.allSatisfy { $0.contains("queue recover") })

        let recovered = try await ProcessRunner.run(binary, ["queue", "recover", "--config", gateway.configPath, "--yes"])
        #expect(recovered.succeeded, "\(recovered.summary)")
        #expect(recovered.stdoutText.contains("salvaged 0 messages"))
        let kept = try FileManager.default.contentsOfDirectory(atPath: gateway.stateDirectory).filter { $0.hasPrefix("outbox.sqlite.damaged-") }
        #expect(kept.count == 1)

        try await gateway.start()
        #expect(gateway.isRunning)
        await gateway.kill()
    }

    @Test("a state directory remounted read-only: exit 65 with what to fix", .enabled(if: getuid() == 0, "mounts a tmpfs: needs root"))
    func readOnlyStateDirectory() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory("readonly-state")
        defer { directory.remove() }
        let gateway = try GatewayProcess(brokerPort: try LoopbackPorts.tcp(), certificates: certificates, directory: directory)
        let state = gateway.stateDirectory
        let mounted = try await ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", state])
        #expect(mounted.succeeded, "\(mounted.summary)")
        defer { _ = umount2(state, Int32(MNT_DETACH)) }
        try await gateway.start()
        await gateway.terminate()
        let remounted = try await ProcessRunner.run("/bin/mount", ["-o", "remount,ro", state])
        #expect(remounted.succeeded, "\(remounted.summary)")

        let failed = try await ProcessRunner.run(try GatewayBinary.path(), ["run", "--config", gateway.configPath], timeout: .seconds(30))
        #expect(failed.status == .exited(65), "\(failed.summary)")
        #expect(failed.stderrText.contains("must be writable by the service user"), "\(failed.stderrText)")
    }

    @Test("a WAL cut mid-frame (a torn write): the gateway starts, says so in one line, and delivers the commits before the cut")
    func tornWAL() async throws {
        try await EndToEnd.run("torn-wal", brokerDownAtStart: true) { env in
            let gateway = env.gateway
            let posted = try await FullDiskTests.post(gateway, devices: (0..<200).map { "tw-\($0)" })
            #expect(posted.others.isEmpty)
            await gateway.kill()
            let wal = gateway.stateDirectory + "/outbox.sqlite-wal"
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: wal))
            let size = try handle.seekToEnd()
            #expect(size > 10_000, "a WAL with frames in it")
            try handle.truncate(atOffset: size - 1000)
            try handle.close()

            try await gateway.start()
            let lines = gateway.currentLog.split(separator: "\n").filter { $0.contains("outbox WAL ended in a partial write") }
            #expect(lines.count == 1, "\(tail(gateway.currentLog, lines: 20))")
            try await env.broker.start()
            let sent = FullDiskTests.topics(posted.accepted)
            let received = try await env.subscriber.waitUntil(timeout: .seconds(120), "the readings before the cut") { messages in
                messages.count >= 150
            }
            #expect(Set(received.map(\.topic)).isSubset(of: sent))
        }
    }
}
