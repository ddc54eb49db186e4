import Foundation
import Testing

/// Desired-state changes reaching devices: CoAP Observe of a shadow mapping
/// (coap-client -s) and HTTP long-poll (curl, `?wait=N`), against mosquitto
/// and the shadow service double.
@Suite("Device Shadow deltas")
struct ShadowDeltaTests {
    static func settings() -> GatewaySettings {
        var settings = GatewaySettings()
        settings.mappings = ShadowTests.mappings
        // An observer that stops acknowledging is dropped after one resend
        // (some 6 to 9 s) instead of RFC 7252's four (up to 93 s).
        settings.coapExtra = ["notify_retransmits: 1"]
        return settings
    }

    /// One line of an observing coap-client's output, with when it was printed.
    struct Line {
        var at: Double
        var text: String
    }

    /// `coap-client -s seconds` observing `path`; every output line stamped
    /// with the wall clock as it appears (the test compares it with when it
    /// published the change). `pidFile` gets the client's process id.
    static func observe(port: UInt16, path: String, seconds: Int, pidFile: String) async throws -> [Line] {
        let local = try LoopbackPorts.udp()
        let client = try Tools.require(Tools.coapClient)
        let script = """
            stdbuf -oL -eL \(client) -a 127.0.0.1 -p \(local) -m get -v 6 -o /dev/null -B \(seconds + 5) -s \(seconds) coap://127.0.0.1:\(port)\(path) & \
            echo $! > \(pidFile); wait
            """
        let stamped = "(\(script)) 2>&1 | while IFS= read -r line; do printf '%s %s\\n' \"$(date +%s.%N)\" \"$line\"; done"
        // Line-buffered: each line is stamped when coap-client prints it, not when it exits.
        let result = try await ProcessRunner.run("/bin/bash", ["-c", stamped], timeout: .seconds(Double(seconds + 20)))
        return result.stdoutText.split(separator: "\n").compactMap { raw in
            let parts = raw.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let at = Double(parts[0]) else { return nil }
            return Line(at: at, text: String(parts[1]))
        }
    }

    /// The observing coap-client vanishes without a word (SIGKILL): its
    /// port answers nothing from now on.
    static func vanish(_ pidFile: String) throws {
        let pid = try #require(Int32(readText(pidFile).trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(pid, SIGKILL)
    }

    /// The notifications among them: 2.05 responses carrying Observe.
    static func notifications(_ lines: [Line]) -> [Line] {
        lines.filter { $0.text.hasPrefix("v:1 ") && $0.text.contains(" c:2.05 ") && $0.text.contains("Observe:") }
    }

    @Test("an observer gets the document, then each desired change within 1 s; a long-poll gets the next change, or 204")
    func observeAndLongPoll() async throws {
        try await EndToEnd.run("shadow-delta", settings: Self.settings()) { env in
            let service = try await ShadowService.started(broker: env.broker, directory: env.directory)
            let http = { (path: String) in env.gateway.httpURL(path) }
            // A shadow to follow.
            let created = try await HTTP.request("POST", http("/things/fan-2/shadow"), body: Array(#"{"speed":1}"#.utf8))
            #expect(created.status == 200, "\(created)")

            let pidFile = env.directory.file("observer.pid")
            let coapPort = env.gateway.coapPort
            let pollURL = http("/things/fan-2/shadow/state?wait=10")
            async let observed = Self.observe(port: coapPort, path: "/things/fan-2/shadow/desired", seconds: 8, pidFile: pidFile)
            async let polled = HTTP.request("GET", pollURL, timeout: 20)
            // Both are registered (the observer has its first answer) before anything changes.
            try await Task.sleep(for: .seconds(2))
            var published: [Double] = []
            for speed in [3, 5] {
                published.append(Date().timeIntervalSince1970)
                try await env.broker.publish(
                    topic: "$aws/things/fan-2/shadow/update", payload: Array(#"{"state":{"desired":{"speed":\#(speed)}}}"#.utf8)
                )
                try await Task.sleep(for: .seconds(2))
            }
            let lines = try await observed
            let poll = try await polled

            let notes = Self.notifications(lines)
            #expect(notes.count == 3, "the registration's answer and two changes:\n\(lines.map(\.text).joined(separator: "\n"))")
            if notes.count == 3 {
                // The registration's answer: desired is still empty.
                #expect(notes[0].text.contains(#":: '{}'"#) && notes[0].text.contains("t:ACK"), "\(notes[0].text)")
                #expect(notes[1].text.contains(#"{"speed":3}"#), "\(notes[1].text)")
                #expect(notes[2].text.contains(#"{"speed":5}"#), "\(notes[2].text)")
                #expect(notes[1].text.contains("t:CON"), "notifications are confirmable: \(notes[1].text)")
                for (note, sent) in zip(notes.dropFirst(), published) {
                    #expect(note.at - sent < 1.0, "a change reached the observer \(note.at - sent) s after it was published")
                }
            }
            // The long-poll answered with the first change, as the state part.
            #expect(poll.status == 200, "\(poll)")
            #expect(poll.text == #"{"speed":3}"#, "\(poll)")

            // Nothing changes: a long-poll ends with 204 after its wait.
            let quiet = try await HTTP.request("GET", http("/things/fan-2/shadow?wait=1"))
            #expect(quiet.status == 204, "\(quiet)")
            let bad = try await HTTP.request("GET", http("/things/fan-2/shadow?wait=soon"))
            #expect(bad.status == 400, "\(bad)")
            await service.stop()
        }
    }

    @Test("an observer that stops acknowledging its notifications is removed")
    func silentObserverIsRemoved() async throws {
        try await EndToEnd.run("shadow-observer-gone", settings: Self.settings()) { env in
            let service = try await ShadowService.started(broker: env.broker, directory: env.directory)
            let created = try await HTTP.request("POST", env.gateway.httpURL("/things/valve-9/shadow"), body: Array(#"{"open":false}"#.utf8))
            #expect(created.status == 200, "\(created)")

            let pidFile = env.directory.file("observer.pid")
            let coapPort = env.gateway.coapPort
            async let observed = Self.observe(port: coapPort, path: "/things/valve-9/shadow/desired", seconds: 30, pidFile: pidFile)
            try await Task.sleep(for: .seconds(2))
            try Self.vanish(pidFile)
            try await env.broker.publish(
                topic: "$aws/things/valve-9/shadow/update", payload: Array(#"{"state":{"desired":{"open":true}}}"#.utf8)
            )
            try await eventually(timeout: .seconds(30), "the gateway to drop the silent observer") {
                env.gateway.currentLog.contains("coap observer removed") ? true : nil
            }
            _ = try await observed
            await service.stop()
        }
    }
}
