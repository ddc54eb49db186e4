import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The gateway stops — gracefully or not — and whatever it acknowledged is
/// still delivered after it starts again on the same state directory.
@Suite("Gateway restarts")
struct RestartTests {
    @Test("SIGTERM: exit 0 within the grace period; messages stored while the broker was down are delivered after a restart")
    func sigtermThenRestart() async throws {
        try await EndToEnd.run("restart-sigterm", brokerDownAtStart: true) { env in
            let gateway = env.gateway
            var acknowledged = Set<String>()
            for index in 0..<5 {
                let coap = try await CoAP.post(port: gateway.coapPort, path: "/sensors/r\(index)/temperature",
                                               payload: Array("stored-coap-\(index)".utf8))
                #expect(coap.code == "2.04", "\(coap)")
                if coap.code == "2.04" { acknowledged.insert("stored-coap-\(index)") }
                let http = try await HTTP.post(gateway.httpURL("/sensors/r\(index)/temperature"), body: Array("stored-http-\(index)".utf8))
                #expect(http.status == 202, "\(http)")
                if http.status == 202 { acknowledged.insert("stored-http-\(index)") }
            }

            let clock = ContinuousClock()
            let started = clock.now
            let (status, forced) = await gateway.terminate(grace: .seconds(15))
            let took = clock.now - started
            #expect(!forced, "the gateway did not exit within 15 s of SIGTERM; its log:\n\(tail(gateway.currentLog, lines: 30))")
            #expect(status == .exited(0), "exit status after SIGTERM: \(status)")
            // How long it took is a figure, not an assertion (speed belongs
            // in bench/); the bound is the 15 s grace above.
            print("SIGTERM with the broker down: exited after \(took)")
            #expect(env.subscriber.messages().isEmpty)

            try await env.broker.start()
            try await gateway.start()
            let received = try await env.subscriber.waitForAll(acknowledged, timeout: .seconds(90))
            let accounting = Accounting(acknowledged: acknowledged, received: received)
            #expect(accounting.lost.isEmpty, "\(accounting)")

            // And a second graceful stop, connected this time, is just as clean.
            let (again, forcedAgain) = await gateway.terminate(grace: .seconds(15))
            #expect(!forcedAgain && again == .exited(0), "second SIGTERM: \(again); log:\n\(tail(gateway.currentLog, lines: 30))")
        }
    }

    @Test("SIGINT stops gracefully too (exit 0)")
    func sigint() async throws {
        try await EndToEnd.run("restart-sigint") { env in
            let pid = try #require(env.gateway.pid)
            kill(pid, SIGINT)
            let exited = try await eventually(timeout: .seconds(15), "the gateway to exit after SIGINT") { () -> Bool? in
                env.gateway.isRunning ? nil : true
            }
            #expect(exited)
            let (status, _) = await env.gateway.terminate()
            #expect(status == .exited(0), "exit status after SIGINT: \(status); log:\n\(tail(env.gateway.currentLog, lines: 30))")
        }
    }

    @Test("SIGTERM mid-load: exit 0, and every 2.04 is delivered (after a restart if need be)")
    func sigtermMidLoad() async throws {
        try await EndToEnd.run("restart-sigterm-load") { env in
            try await Self.stopMidLoad(env, prefix: "term", graceful: true)
        }
    }

    @Test("kill -9 mid-load: every 2.04 is delivered after a restart (lost = 0)")
    func killMidLoad() async throws {
        try await EndToEnd.run("restart-kill9-load") { env in
            try await Self.stopMidLoad(env, prefix: "kill", graceful: false)
        }
    }

    /// Load from 20 source ports; stop the gateway once 400 are answered;
    /// restart it; every acknowledged payload must arrive.
    static func stopMidLoad(_ env: EndToEnd, prefix: String, graceful: Bool) async throws {
        let gateway = env.gateway
        // A stream, so the gateway is stopped mid-load however fast it
        // answers (a fixed list could be used up first); rate-limited so the
        // test stays the same size on any machine.
        let settings = CoAPLoad.Settings(sockets: 20, window: 4, ratePerSecond: 1000, timeout: .seconds(240))
        let (_, result) = try await CoAPLoad.during(port: gateway.coapPort, settings: settings, drain: .zero, make: { socket, sequence in
            CoAPLoad.Request(path: ["sensors", "\(prefix)-\(socket)", "temperature"], payload: Array("\(prefix)-\(socket)-\(sequence)".utf8))
        }) { load in
            try await load.waitFor(400, "before stopping the gateway")
            if graceful {
                let (status, forced) = await gateway.terminate(grace: .seconds(30))
                #expect(!forced, "the gateway did not exit within 30 s of SIGTERM; its log:\n\(tail(gateway.currentLog, lines: 30))")
                #expect(status == .exited(0), "exit status after SIGTERM under load: \(status); log:\n\(tail(gateway.currentLog, lines: 30))")
            } else {
                await gateway.kill()
            }
        }
        let acknowledged = result.acknowledged
        #expect(acknowledged.count >= 400)
        // Requests still outstanding when it stopped end without an answer;
        // a graceful stop may also refuse some (5.03) while it drains.
        let otherCodes = Set(result.histogram.keys).subtracting(["2.04", "none"])
        #expect(otherCodes.isEmpty || graceful, "responses other than 2.04: \(result.histogram)")

        try await gateway.start()
        let received = try await env.subscriber.waitForAll(acknowledged, timeout: .seconds(120))
        let accounting = Accounting(acknowledged: acknowledged, received: received)
        #expect(accounting.lost.isEmpty, "\(accounting)")
        print("\(graceful ? "SIGTERM" : "kill -9") mid-load: \(accounting); responses \(result.histogram)")
    }
}
