import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// systemd's notify protocol, spoken to a real `NOTIFY_SOCKET` the test
/// binds: READY=1 once the gateway serves, STATUS= with the outbox and the
/// upstream, WATCHDOG=1 only while every worker thread makes progress,
/// STOPPING=1 on SIGTERM.
///
/// The stuck thread is the outbox writer on a hung disk: an LD_PRELOAD shim
/// makes `pwrite` block (not fail) while a trigger file exists, as a dying
/// SD card does.
@Suite("systemd notify and watchdog")
struct NotifyTests {
    @Test("READY, STATUS and WATCHDOG over NOTIFY_SOCKET; a writer stuck on a hung disk stops the pings until it moves again; STOPPING on SIGTERM",
          .enabled(if: FaultShim.compiler != nil, "no C compiler (clang/cc) to build the hung-disk shim"))
    func notifyProtocolAndWatchdog() async throws {
        var notify: NotifySocket?
        var trigger = ""
        try await EndToEnd.run("notify", gatewayEnvironment: { directory in
            let library = try await FaultShim.build(FaultShim.pwrite(.hang), named: "hang", in: directory)
            let socket = try NotifySocket(path: directory.file("notify.sock"))
            notify = socket
            trigger = directory.file("hang-writes")
            // A 2 s watchdog: pings every second.
            return ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "2000000", "LD_PRELOAD": library, FaultShim.triggerVariable: trigger]
        }) { env in
            let socket = try #require(notify)
            defer { socket.stop() }
            let gateway = env.gateway

            let ready = try await eventually(timeout: .seconds(20), "READY=1 on the notify socket") {
                socket.messages.first { $0.has("READY=1") }
            }
            #expect(ready.value("STATUS")?.hasPrefix("queued ") == true, "READY=1 without a STATUS: \(ready.fields)")
            try await eventually(timeout: .seconds(15), "three watchdog pings") { socket.count("WATCHDOG=1") >= 3 ? true : nil }

            let before = try await HTTP.post(gateway.httpURL("/sensors/before/temperature"), body: Array("before".utf8))
            #expect(before.status == 202, "\(before)")
            try await eventually(timeout: .seconds(20), "a STATUS naming the connected upstream") {
                socket.messages.contains { $0.value("STATUS")?.contains("upstream connected 1/1") == true } ? true : nil
            }

            // The disk hangs under the writer: the next commit never returns.
            _ = FileManager.default.createFile(atPath: trigger, contents: nil)
            let heldURL = gateway.httpURL("/sensors/held/temperature")
            let held = Task { try await HTTP.request("POST", heldURL, body: Array("held".utf8), timeout: 60) }
            try await eventually(timeout: .seconds(30), "the stuck writer in the gateway log") {
                gateway.currentLog.contains("worker thread stuck") ? true : nil
            }
            let stuckLine = gateway.currentLog.split(separator: "\n").first { $0.contains("worker thread stuck") } ?? ""
            #expect(stuckLine.contains("outbox-writer"), "\(stuckLine)")
            // A ping sent just before the verdict may still be on its way.
            try await Task.sleep(for: .seconds(1))
            let pingsWhenStuck = socket.count("WATCHDOG=1")
            try await Task.sleep(for: .seconds(4))
            #expect(socket.count("WATCHDOG=1") == pingsWhenStuck, "watchdog pings went on while the writer was stuck")

            // The disk comes back: pings resume and the held request is answered.
            try FileManager.default.removeItem(atPath: trigger)
            try await eventually(timeout: .seconds(20), "pings to resume") {
                socket.count("WATCHDOG=1") > pingsWhenStuck ? true : nil
            }
            #expect(gateway.currentLog.contains("watchdog pings resume"))
            let answer = try await held.value
            #expect(answer.status == 202, "\(answer)")
            let received = try await env.subscriber.waitFor(count: 2)
            #expect(Set(received.map(\.text)) == ["before", "held"], "\(received)")

            let (status, forced) = await gateway.terminate()
            #expect(status == .exited(0) && !forced, "\(status)")
            try await eventually(timeout: .seconds(5), "STOPPING=1 on the notify socket") {
                socket.messages.contains { $0.has("STOPPING=1") } ? true : nil
            }
        }
    }
}
