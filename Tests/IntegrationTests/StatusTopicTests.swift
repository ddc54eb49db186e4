import Foundation
import Testing

/// `upstream.status_topic`: `online` (retained) at each connect, `offline`
/// before a clean stop, and the broker's own `offline` (the will) when the
/// gateway dies without a word.
@Suite("Gateway status topic")
struct StatusTopicTests {
    @Test("online at connect, offline on SIGTERM, online again, and the will's offline after kill -9; the last one is retained")
    func onlineOfflineAndTheWill() async throws {
        var settings = GatewaySettings()
        settings.upstreamExtra = ["status_topic: it/status/{gateway}"]
        // The broker declares a silent client gone after 1.5 keep-alives.
        settings.keepAlive = 5
        let topic = "it/status/\(settings.name)"
        try await EndToEnd.run("status", settings: settings) { env in
            func statuses() -> [String] { env.subscriber.messages().filter { $0.topic == topic }.map(\.text) }
            func waitFor(_ expected: [String], _ what: String) async throws {
                _ = try await env.subscriber.waitUntil(timeout: .seconds(30), what) { _ in statuses() == expected }
            }
            try await waitFor(["online"], "online after the first connect")
            // The status publish's PUBACK is foreign to the forwarder: readings still flow.
            let reading = try await HTTP.post(env.gateway.httpURL("/sensors/s1/temperature"), body: Array("21.5".utf8))
            #expect(reading.status == 202, "\(reading)")
            try await env.subscriber.waitForAll(["21.5"], timeout: .seconds(20))

            let (status, _) = await env.gateway.terminate()
            #expect(status == .exited(0))
            try await waitFor(["online", "offline"], "offline before the clean stop")

            try await env.gateway.start()
            try await env.gateway.waitUntilConnected()
            try await waitFor(["online", "offline", "online"], "online after the restart")

            await env.gateway.kill()
            try await waitFor(["online", "offline", "online", "offline"], "the will's offline after kill -9")

            // A subscriber that comes later is told the state at once.
            let late = try await ProcessRunner.run(
                Tools.mosquittoSub, env.broker.clientArguments + ["-t", topic, "-C", "1", "-W", "10", "-F", "%r %p"],
                timeout: .seconds(20)
            )
            #expect(late.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "1 offline", "\(late.summary)")
        }
    }
}
