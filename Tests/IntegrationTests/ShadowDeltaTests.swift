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

    /// `coap-client -s` observing a path, in the background: every output
    /// line stamped with the wall clock as it appears (the tests compare it
    /// with when they published a change), readable while it runs.
    final class Observer {
        let child: ChildProcess
        let pidFile: String
        let outputPath: String

        init(port: UInt16, path: String, directory: TemporaryDirectory, seconds: Int = 60) throws {
            let name = "observer-\(UUID().uuidString.prefix(8))"
            pidFile = directory.file(name + ".pid")
            outputPath = directory.file(name + ".out")
            let local = try LoopbackPorts.udp()
            let client = try Tools.require(Tools.coapClient)
            // Line-buffered, so each line is stamped when coap-client prints it.
            let script = """
                (stdbuf -oL -eL \(client) -a 127.0.0.1 -p \(local) -m get -v 6 -o /dev/null -B \(seconds + 5) -s \(seconds) \
                coap://127.0.0.1:\(port)\(path) & echo $! > \(pidFile); wait) 2>&1 \
                | while IFS= read -r line; do printf '%s %s\\n' "$(date +%s.%N)" "$line"; done
                """
            child = try ChildProcess(
                executable: "/bin/bash", arguments: ["-c", script], stdoutPath: outputPath, stderrPath: outputPath + ".err"
            )
        }

        var lines: [Line] {
            readText(outputPath).split(separator: "\n").compactMap { raw in
                let parts = raw.split(separator: " ", maxSplits: 1)
                guard parts.count == 2, let at = Double(parts[0]) else { return nil }
                return Line(at: at, text: String(parts[1]))
            }
        }

        /// The notifications so far: 2.05 responses carrying Observe (the registration's answer first).
        var notifications: [Line] { ShadowDeltaTests.notifications(lines) }

        /// Waits until the registration's answer and `count - 1` notifications came.
        func waitFor(_ count: Int, _ what: String, timeout: Duration = .seconds(30)) async throws {
            try await eventually(timeout: timeout, what) { notifications.count >= count ? true : nil }
        }

        var pid: Int32? { Int32(readText(pidFile).trimmingCharacters(in: .whitespacesAndNewlines)) }

        /// The device vanishes without a word (SIGKILL): its port answers nothing from now on.
        func vanish() throws {
            let pid = try #require(self.pid)
            kill(pid, SIGKILL)
        }

        /// Ends it and returns everything it printed.
        func stop() async -> [Line] {
            if let pid { kill(pid, SIGTERM) }
            _ = await child.waitForExit(timeout: .seconds(10))
            await child.kill()
            return lines
        }

        var transcript: String { lines.map(\.text).joined(separator: "\n") }
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

            let observer = try Observer(port: env.gateway.coapPort, path: "/things/fan-2/shadow/desired", directory: env.directory)
            let pollURL = http("/things/fan-2/shadow/state?wait=30")
            async let polled = HTTP.request("GET", pollURL, timeout: 40)
            // Both are registered (the observer has its first answer) before anything changes.
            try await observer.waitFor(1, "the observer's registration")
            try await Task.sleep(for: .seconds(1))
            var published: [Double] = []
            for (index, speed) in [3, 5].enumerated() {
                published.append(Date().timeIntervalSince1970)
                try await env.broker.publish(
                    topic: "$aws/things/fan-2/shadow/update", payload: Array(#"{"state":{"desired":{"speed":\#(speed)}}}"#.utf8)
                )
                try await observer.waitFor(index + 2, "change \(index + 1) at the observer")
            }
            let lines = await observer.stop()
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
            // The long-poll answered with a change (the first, unless curl
            // was slower to ask than the change to come), as the state part.
            #expect(poll.status == 200, "\(poll)")
            #expect(poll.text == #"{"speed":3}"# || poll.text == #"{"speed":5}"#, "\(poll)")

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

            let observer = try Observer(port: env.gateway.coapPort, path: "/things/valve-9/shadow/desired", directory: env.directory)
            try await observer.waitFor(1, "the observer's registration")
            try observer.vanish()
            try await env.broker.publish(
                topic: "$aws/things/valve-9/shadow/update", payload: Array(#"{"state":{"desired":{"open":true}}}"#.utf8)
            )
            try await eventually(timeout: .seconds(30), "the gateway to drop the silent observer") {
                env.gateway.currentLog.contains("coap observer removed") ? true : nil
            }
            _ = await observer.stop()
            await service.stop()
        }
    }
}
