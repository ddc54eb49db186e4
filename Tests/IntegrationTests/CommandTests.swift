import Foundation
import Testing

/// Command mappings end to end: an application publishes on MQTT, devices
/// get it through CoAP Observe (coap-client -s) or an HTTP long-poll (curl);
/// what arrives while a device is away is kept for it, across a restart.
@Suite("Command mappings")
struct CommandTests {
    static let mappings = """
        - name: commands
          resource: /commands/{device}
          auth: anonymous
          commands: {topic: "it-cmd/{device}/#", keep: 5}
        - name: fleeting-commands
          resource: /fleeting/{device}
          auth: anonymous
          commands: {topic: "it-fleeting/{device}", expiry: 2s, format: envelope}

        """

    static func settings(name: String = "gw-test") -> GatewaySettings {
        var settings = GatewaySettings()
        settings.name = name
        settings.mappings = mappings
        settings.logLevel = "debug"
        settings.coapExtra = ["notify_retransmits: 1"]
        return settings
    }

    static func publish(_ env: EndToEnd, _ topic: String, _ text: String) async throws {
        try await env.broker.publish(topic: topic, payload: Array(text.utf8))
    }

    @Test("an observing CoAP device and a long-polling HTTP device each get their own commands, within 1 s")
    func observeAndPoll() async throws {
        try await EndToEnd.run("commands", settings: Self.settings()) { env in
            // Followed from this first visit on: should the long-poll below
            // reach the gateway after its command, the command waits for it.
            let first = try await HTTP.request("GET", env.gateway.httpURL("/commands/meter-2"))
            #expect(first.status == 204, "\(first)")
            let pollURL = env.gateway.httpURL("/commands/meter-2?wait=30")
            let observer = try ShadowDeltaTests.Observer(port: env.gateway.coapPort, path: "/commands/lamp-1", directory: env.directory)
            async let polled = HTTP.request("GET", pollURL, timeout: 40)
            try await observer.waitFor(1, "the observer's registration")
            try await Task.sleep(for: .seconds(1))
            let sentLamp = Date().timeIntervalSince1970
            try await Self.publish(env, "it-cmd/lamp-1/reboot", "now")
            try await Self.publish(env, "it-cmd/meter-2/set", #"{"interval":15}"#)
            try await observer.waitFor(2, "the command at the observer")
            // Time for a wrong delivery to show.
            try await Task.sleep(for: .seconds(1))
            let lines = await observer.stop()
            let poll = try await polled

            let notes = ShadowDeltaTests.notifications(lines)
            #expect(notes.count == 2, "the registration's answer and one command:\n\(lines.map(\.text).joined(separator: "\n"))")
            if notes.count == 2 {
                #expect(notes[0].text.contains("t:ACK"), "\(notes[0].text)")
                #expect(notes[1].text.contains("t:CON") && notes[1].text.contains(":: 'now'"), "\(notes[1].text)")
                #expect(notes[1].at - sentLamp < 1.0, "the command reached the observer \(notes[1].at - sentLamp) s after it was published")
            }
            // The other device's command never reached this one.
            #expect(!lines.contains { $0.text.contains("interval") }, "\(lines.map(\.text))")
            #expect(poll.status == 200, "\(poll)")
            #expect(poll.text == #"{"interval":15}"#, "\(poll)")
            #expect(poll.header("Command-Topic") == "it-cmd/meter-2/set", "\(poll)")
        }
    }

    @Test("commands for a device that is away are kept (bounded, with expiry) and survive a restart")
    func keptForAnAbsentDevice() async throws {
        try await EndToEnd.run("commands-kept", settings: Self.settings()) { env in
            let url = { (path: String) in env.gateway.httpURL(path) }
            // The first visit: nothing yet, and from now on the gateway follows the device's commands.
            let first = try await HTTP.request("GET", url("/commands/pump-3"))
            #expect(first.status == 204, "\(first)")
            let fleeting = try await HTTP.request("GET", url("/fleeting/pump-3"))
            #expect(fleeting.status == 204, "\(fleeting)")
            let other = try await HTTP.request("GET", url("/commands/pump-4"))
            #expect(other.status == 204, "\(other)")
            // The answers come at once; the SUBACKs a moment later.
            for filter in ["it-cmd/pump-3/#", "it-fleeting/pump-3", "it-cmd/pump-4/#"] {
                try await eventually(timeout: .seconds(20), "the subscription to \(filter)") {
                    env.gateway.currentLog.contains("mqtt.filter=\(filter) ") ? true : nil
                }
            }
            let started = ContinuousClock.now
            for index in 1...7 { try await Self.publish(env, "it-cmd/pump-3/step", "step-\(index)") }
            try await Self.publish(env, "it-fleeting/pump-3", "gone soon")
            try await env.broker.publish(topic: "it-cmd/pump-4/stale", payload: Array("again".utf8), retain: true)
            try await eventually(timeout: .seconds(10), "the commands to be kept") {
                env.gateway.currentLog.components(separatedBy: "command kept").count - 1 >= 9 ? true : nil
            }

            // A restart in between: the kept commands and the followed filters come back.
            let (status, _) = await env.gateway.terminate()
            #expect(status == .exited(0))
            try await env.gateway.start()
            try await env.gateway.waitUntilConnected()
            // The device comes back after 30 s.
            try await Task.sleep(until: started + .seconds(30))

            var got: [String] = []
            for _ in 0..<6 {
                let next = try await HTTP.request("GET", url("/commands/pump-3"))
                if next.status == 204 { break }
                #expect(next.status == 200, "\(next)")
                got.append(next.text)
            }
            // keep: 5 — the two oldest made room.
            #expect(got == ["step-3", "step-4", "step-5", "step-6", "step-7"])
            // The fleeting one expired after 2 s.
            let expired = try await HTTP.request("GET", url("/fleeting/pump-3"))
            #expect(expired.status == 204, "\(expired)")
            // A retained command, kept once as it arrived, is not taken again
            // when the broker replays it at the resubscribe after the restart.
            try await eventually(timeout: .seconds(10), "the retained copy to be refused") {
                env.gateway.currentLog.contains("retained command ignored") ? true : nil
            }
            let once = try await HTTP.request("GET", url("/commands/pump-4"))
            #expect(once.status == 200 && once.text == "again", "\(once)")
            let none = try await HTTP.request("GET", url("/commands/pump-4"))
            #expect(none.status == 204, "\(none)")
            // What arrives while it is followed after the restart is kept too, as an envelope here.
            try await Self.publish(env, "it-fleeting/pump-3", "fresh")
            try await eventually(timeout: .seconds(10), "the fresh command to be kept") {
                env.gateway.currentLog.contains("command kept") ? true : nil
            }
            let fresh = try await HTTP.request("GET", url("/fleeting/pump-3"))
            #expect(fresh.status == 200, "\(fresh)")
            #expect(fresh.header("Content-Type") == "application/json", "\(fresh)")
            #expect(fresh.text.contains(#""payload":"fresh""#) && fresh.text.contains(#""topic":"it-fleeting/pump-3""#), "\(fresh)")
        }
    }

    @Test("a command sent to an observer that vanished is kept again once the notification goes unacknowledged")
    func unacknowledgedCommandIsKeptAgain() async throws {
        try await EndToEnd.run("commands-unacked", settings: Self.settings()) { env in
            let observer = try ShadowDeltaTests.Observer(port: env.gateway.coapPort, path: "/commands/gate-6", directory: env.directory)
            try await observer.waitFor(1, "the observer's registration")
            try observer.vanish()
            try await Self.publish(env, "it-cmd/gate-6/close", "close")
            try await eventually(timeout: .seconds(30), "the silent observer to be dropped") {
                env.gateway.currentLog.contains("coap observer removed") ? true : nil
            }
            _ = await observer.stop()
            // Not lost: the next visit gets it.
            let next = try await HTTP.request("GET", env.gateway.httpURL("/commands/gate-6"))
            #expect(next.status == 200 && next.text == "close", "\(next)")
        }
    }

    @Test("two gateway instances on one broker: a device observing through the second gets its commands; the first never receives them")
    func twoInstances() async throws {
        try await EndToEnd.run("commands-two", settings: Self.settings(name: "gw-one")) { env in
            let other = try TemporaryDirectory("commands-two-b")
            defer { other.remove() }
            let second = try GatewayProcess(
                settings: Self.settings(name: "gw-two"), brokerPort: env.broker.port, certificates: env.broker.certificates, directory: other
            )
            try await second.start()
            try await second.waitUntilConnected()
            let observer = try ShadowDeltaTests.Observer(port: second.coapPort, path: "/commands/door-4", directory: other)
            try await observer.waitFor(1, "the observer's registration")
            try await Self.publish(env, "it-cmd/door-4/open", "open")
            try await observer.waitFor(2, "the command at the observer")
            let lines = await observer.stop()
            let notes = ShadowDeltaTests.notifications(lines)
            #expect(notes.count == 2 && notes.last?.text.contains(":: 'open'") == true, "\(lines.map(\.text).joined(separator: "\n"))")
            #expect(second.currentLog.contains("command delivered"), "\(second.log)")
            // The first instance has no subscription for that device: it never saw the command.
            #expect(!env.gateway.currentLog.contains("it-cmd/door-4"), "\(env.gateway.currentLog)")
            await second.kill()
        }
    }
}
