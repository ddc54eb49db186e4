import Foundation
import Testing

/// `iot-gateway queue stats | peek | purge` against the outbox of a real
/// gateway: read while it runs, purge refused while it runs, purge by topic
/// filter once it has stopped — and what was purged is never delivered.
@Suite("queue stats / peek / purge")
struct QueueCommandTests {
    /// Two QoS 1 mappings whose topics a filter can tell apart.
    static let mappings = """
        - name: temperature
          resource: /sensors/{device}/temperature
          auth: anonymous
          topic: dt/sensors/{device}/temperature
          qos: 1
        - name: humidity
          resource: /sensors/{device}/humidity
          auth: anonymous
          topic: dt/sensors/{device}/humidity
          qos: 1

        """

    struct Sent {
        var topic: String
        var payload: String
        var bytes: Int { topic.utf8.count + payload.utf8.count }
    }

    /// One entry of `top_topics`.
    struct TopicLine: Equatable {
        var topic: String
        var messages: Int
        var bytes: Int

        init(topic: String, messages: Int, bytes: Int) {
            self.topic = topic
            self.messages = messages
            self.bytes = bytes
        }

        init(_ json: [String: Any]) {
            topic = json["topic"] as? String ?? "?"
            messages = json["messages"] as? Int ?? -1
            bytes = json["bytes"] as? Int ?? -1
        }

        /// Busiest first, ties by topic, as `queue stats` orders them.
        static func expected(_ sent: [Sent]) -> [TopicLine] {
            let lines = Dictionary(grouping: sent, by: \.topic).map { topic, messages in
                TopicLine(topic: topic, messages: messages.count, bytes: messages.reduce(0) { $0 + $1.bytes })
            }
            return lines.sorted { $0.messages != $1.messages ? $0.messages > $1.messages : $0.topic < $1.topic }
        }
    }

    @Test("stats and peek while the gateway runs; purge refused then; purge by filter after SIGTERM")
    func lifecycle() async throws {
        try await EndToEnd.run("queue-commands", settings: GatewaySettings(mappings: Self.mappings), brokerDownAtStart: true) { env in
            let gateway = env.gateway
            // One at a time, so the outbox order is the order sent.
            var sent: [Sent] = []
            let plan: [(protocol: String, device: String, kind: String)] = [
                ("coap", "d1", "temperature"), ("http", "d2", "temperature"), ("coap", "d1", "humidity"),
                ("http", "d1", "temperature"), ("coap", "d3", "humidity"), ("http", "d3", "humidity"),
                ("coap", "d1", "temperature"),
            ]
            for (index, step) in plan.enumerated() {
                let payload = "{\"seq\":\(index),\"via\":\"\(step.protocol)\"}"
                let path = "/sensors/\(step.device)/\(step.kind)"
                if step.protocol == "coap" {
                    let response = try await CoAP.post(port: gateway.coapPort, path: path, payload: Array(payload.utf8), contentFormat: 50)
                    try #require(response.code == "2.04", "\(payload): \(response)")
                } else {
                    let response = try await HTTP.post(gateway.httpURL(path), body: Array(payload.utf8), contentType: "application/json")
                    try #require(response.status == 202, "\(payload): \(response)")
                }
                sent.append(Sent(topic: "dt/sensors/\(step.device)/\(step.kind)", payload: payload))
            }
            let config = gateway.configPath
            let state = gateway.stateDirectory

            // stats --json while it runs.
            let running = try await Self.json(["stats", "--json"], config: config)
            #expect(running["gateway_running"] as? Bool == true)
            if let pid = gateway.pid, let reported = running["gateway_pid"] as? Int {
                #expect(reported == Int(pid))
            }
            #expect(running["messages"] as? Int == 7)
            #expect(running["bytes"] as? Int == sent.reduce(0) { $0 + $1.bytes })
            #expect(running["counted_messages"] as? Int == 7)
            let byQoS = running["by_qos"] as? [[String: Any]] ?? []
            #expect(byQoS.count == 1)
            #expect(byQoS.first?["qos"] as? Int == 1)
            #expect(byQoS.first?["messages"] as? Int == 7)
            #expect(running["distinct_topics"] as? Int == 4)
            let topics = (running["top_topics"] as? [[String: Any]] ?? []).map(TopicLine.init)
            #expect(topics == TopicLine.expected(sent))
            #expect(topics.first == TopicLine(topic: "dt/sensors/d1/temperature", messages: 3, bytes: 3 * 25 + 3 * 22))
            let oldestAge = running["oldest_age_ms"] as? Int ?? -1
            #expect(oldestAge >= 0 && oldestAge < 120_000, "oldest_age_ms \(oldestAge)")
            #expect((running["note"] as? String ?? "").contains("QoS 0"))

            // The text form says the same.
            let text = try await Self.queue(["stats"], config: config)
            #expect(text.succeeded, "\(text.summary)")
            #expect(text.stdoutText.contains("running (pid"), "\(text.stdoutText)")
            #expect(text.stdoutText.contains("7 messages"), "\(text.stdoutText)")
            #expect(text.stdoutText.contains("dt/sensors/d1/temperature"), "\(text.stdoutText)")

            // peek: oldest first, payloads intact.
            let peek = try await Self.json(["peek", "10", "--json"], config: config)
            let peeked = peek["messages"] as? [[String: Any]] ?? []
            #expect(peeked.map { $0["topic"] as? String ?? "" } == sent.map(\.topic))
            #expect(peeked.map { Self.decodeBase64($0["payload_base64"]) } == sent.map(\.payload))
            let ids = peeked.compactMap { $0["id"] as? Int }
            #expect(ids == ids.sorted() && Set(ids).count == 7, "\(ids)")
            #expect(peeked.allSatisfy { ($0["received_at"] as? String ?? "").hasSuffix("Z") })
            #expect(peeked.first?["mapping"] as? String == "temperature")
            let peekTwo = try await Self.queue(["peek", "2"], config: config)
            #expect(peekTwo.succeeded, "\(peekTwo.summary)")
            let rows = peekTwo.stdoutText.split(separator: "\n")
            #expect(rows.count == 4, "title, header and two rows:\n\(peekTwo.stdoutText)")
            #expect(rows.last?.contains(sent[1].payload) == true, "\(peekTwo.stdoutText)")

            // purge is refused while the gateway holds the lock, with the reason.
            let refused = try await Self.queue(["purge", "--yes"], config: config)
            #expect(refused.status == .exited(1), "\(refused.summary)")
            #expect(refused.stderrText.contains("the gateway is running on \(state) (pid"), "\(refused.summary)")
            #expect(refused.stderrText.contains("stop it first: systemctl stop iot-gateway"), "\(refused.summary)")
            // Without --yes: what it would do, and exit 1.
            let dryRun = try await Self.queue(["purge", "--topic", "dt/sensors/+/temperature"], config: config)
            #expect(dryRun.status == .exited(1), "\(dryRun.summary)")
            #expect(dryRun.stdoutText.contains("would purge 4 messages"), "\(dryRun.summary)")
            #expect(dryRun.stderrText.contains("add --yes"), "\(dryRun.summary)")
            #expect(try await Self.json(["stats", "--json"], config: config)["messages"] as? Int == 7)

            // Stopped: purge the temperatures only.
            let (status, _) = await gateway.terminate(grace: .seconds(15))
            #expect(status == .exited(0))
            let stopped = try await Self.json(["stats", "--json"], config: config)
            #expect(stopped["gateway_running"] as? Bool == false)
            #expect(stopped["messages"] as? Int == 7)

            let purge = try await Self.queue(["purge", "--topic", "dt/sensors/+/temperature", "--yes"], config: config)
            #expect(purge.succeeded, "\(purge.summary)")
            let temperatures = sent.filter { $0.topic.hasSuffix("/temperature") }
            let kept = sent.filter { $0.topic.hasSuffix("/humidity") }
            #expect(purge.stdoutText.contains("purged 4 messages"), "\(purge.summary)")

            let after = try await Self.json(["stats", "--json"], config: config)
            #expect(after["messages"] as? Int == kept.count)
            #expect(after["bytes"] as? Int == kept.reduce(0) { $0 + $1.bytes })
            #expect(after["counted_messages"] as? Int == kept.count)
            #expect(after["counted_bytes"] as? Int == after["bytes"] as? Int)
            let left = (after["top_topics"] as? [[String: Any]] ?? []).compactMap { $0["topic"] as? String }
            #expect(Set(left) == Set(kept.map(\.topic)))
            let peekAfter = try await Self.json(["peek", "--json"], config: config)
            let remaining = (peekAfter["messages"] as? [[String: Any]] ?? []).map { Self.decodeBase64($0["payload_base64"]) }
            #expect(remaining == kept.map(\.payload))

            // Started again with the broker up: only what was kept is delivered.
            try await env.broker.start()
            try await gateway.start()
            try await env.subscriber.waitUntil(timeout: .seconds(60), "the kept messages") { messages in
                Set(kept.map(\.payload)).isSubset(of: Set(messages.map(\.text)))
            }
            let delivered = Set(try await env.subscriber.settle(for: .seconds(1)).map(\.text))
            #expect(temperatures.allSatisfy { !delivered.contains($0.payload) }, "a purged message was delivered")
            try await eventually(timeout: .seconds(30), "the outbox to drain") {
                try await Self.json(["stats", "--json"], config: config)["messages"] as? Int == 0 ? true : nil
            }
        }
    }

    @Test("only the state directory is needed: --state-dir without a config, a config whose certificates, mappings and variables are broken, $IOT_GATEWAY_CONFIG")
    func stateDirectoryOnly() async throws {
        try await EndToEnd.run("queue-state-only", settings: GatewaySettings(mappings: Self.mappings), brokerDownAtStart: true) { env in
            let gateway = env.gateway
            for device in ["a", "b"] {
                let response = try await HTTP.post(gateway.httpURL("/sensors/\(device)/temperature"), body: Array("{}".utf8), contentType: "application/json")
                try #require(response.status == 202, "\(response)")
            }
            let (status, _) = await gateway.terminate(grace: .seconds(15))
            #expect(status == .exited(0))
            let state = gateway.stateDirectory
            let directory = URL(fileURLWithPath: gateway.configPath).deletingLastPathComponent()

            // No configuration at all: --state-dir.
            let bare = try await ProcessRunner.run(
                try GatewayBinary.path(), ["queue", "stats", "--json", "--state-dir", state],
                environment: ["IOT_GATEWAY_CONFIG": "/nonexistent/gateway.yaml"], timeout: .seconds(60)
            )
            #expect(bare.succeeded, "\(bare.summary)")
            let stats = try JSONSerialization.jsonObject(with: bare.stdout) as? [String: Any]
            #expect(stats?["messages"] as? Int == 2 && stats?["state_dir"] as? String == state, "\(bare.summary)")
            let peek = try await ProcessRunner.run(try GatewayBinary.path(), ["queue", "peek", "--state-dir", state], timeout: .seconds(60))
            #expect(peek.succeeded && peek.stdoutText.contains("dt/sensors/a/temperature"), "\(peek.summary)")

            // A configuration that check-config refuses, but whose state_dir is readable.
            var text = try String(contentsOfFile: gateway.configPath, encoding: .utf8)
            let certificates = try await TestCertificates.shared()
            text = text.replacingOccurrences(of: "cert_file: \(certificates.gateway.certificate)", with: "cert_file: /nonexistent/client.pem")
            text = text.replacingOccurrences(of: "state_dir: \(state)", with: "state_dir: ${QUEUE_TEST_STATE}")
            text += "\nmapping_files: [absent-mappings.yaml]\n"
            let broken = directory.appendingPathComponent("broken.yaml").path
            try Data(text.utf8).write(to: URL(fileURLWithPath: broken))
            let refused = try await GatewayProcess.checkConfig(broken)
            #expect(refused.status == .exited(1), "\(refused.summary)")
            for expected in ["/nonexistent/client.pem", "absent-mappings.yaml", "QUEUE_TEST_STATE is not set"] {
                #expect(refused.stderrText.contains(expected), "check-config should refuse it for \(expected): \(refused.summary)")
            }
            let environment = ["QUEUE_TEST_STATE": state]
            let viaConfig = try await ProcessRunner.run(
                try GatewayBinary.path(), ["queue", "stats", "--json", "--config", broken], environment: environment, timeout: .seconds(60)
            )
            #expect(viaConfig.succeeded, "\(viaConfig.summary)")
            #expect((try? JSONSerialization.jsonObject(with: viaConfig.stdout) as? [String: Any])?["messages"] as? Int == 2, "\(viaConfig.summary)")

            // The same file through $IOT_GATEWAY_CONFIG, with no --config.
            var viaEnvironment = environment
            viaEnvironment["IOT_GATEWAY_CONFIG"] = broken
            let peekTwo = try await ProcessRunner.run(try GatewayBinary.path(), ["queue", "peek", "1"], environment: viaEnvironment, timeout: .seconds(60))
            #expect(peekTwo.succeeded && peekTwo.stdoutText.contains("oldest 1 of 2 stored messages"), "\(peekTwo.summary)")
            let dryRun = try await ProcessRunner.run(try GatewayBinary.path(), ["queue", "purge"], environment: viaEnvironment, timeout: .seconds(60))
            #expect(dryRun.status == .exited(1) && dryRun.stdoutText.contains("would purge 2 messages"), "\(dryRun.summary)")

            // state_dir itself must still resolve.
            let unset = try await Self.queue(["stats"], config: broken)
            #expect(unset.status == .exited(1), "\(unset.summary)")
            #expect(unset.stderrText.contains("broken.yaml:") && unset.stderrText.contains("error: environment variable QUEUE_TEST_STATE is not set"), "\(unset.summary)")
            #expect(!unset.stderrText.contains("client.pem") && !unset.stderrText.contains("absent-mappings"), "only state_dir is read: \(unset.summary)")

            let both = try await ProcessRunner.run(
                try GatewayBinary.path(), ["queue", "stats", "--state-dir", state, "--config", broken], timeout: .seconds(60)
            )
            #expect(both.status != .exited(0) && both.stderrText.contains("not both"), "\(both.summary)")
        }
    }

    @Test("a configuration that cannot give a state directory is printed as check-config prints it; no outbox is named as such")
    func errors() async throws {
        let directory = try TemporaryDirectory("queue-errors")
        defer { directory.remove() }

        let missing = directory.file("absent.yaml")
        let noFile = try await Self.queue(["stats"], config: missing)
        let checkMissing = try await GatewayProcess.checkConfig(missing)
        #expect(noFile.status == .exited(1), "\(noFile.summary)")
        #expect(noFile.stderrText == checkMissing.stderrText, "\(noFile.summary)\n\(checkMissing.summary)")

        let notYAML = try directory.write("gateway: [\n", to: "not-yaml.yaml")
        let unreadable = try await Self.queue(["peek"], config: notYAML)
        let checkUnreadable = try await GatewayProcess.checkConfig(notYAML)
        #expect(unreadable.status == .exited(1), "\(unreadable.summary)")
        #expect(unreadable.stderrText == checkUnreadable.stderrText, "\(unreadable.summary)\n\(checkUnreadable.summary)")

        let wrongType = try directory.write("gateway:\n  name: gw\n  state_dir: [a, b]\n", to: "broken.yaml")
        let invalid = try await Self.queue(["peek"], config: wrongType)
        #expect(invalid.status == .exited(1), "\(invalid.summary)")
        #expect(invalid.stderrText.contains("broken.yaml:3:14: error: gateway.state_dir must be a string"), "\(invalid.summary)")

        let valid = try directory.write(try await CheckConfigTests.config(in: directory), to: "gateway.yaml")
        let database = directory.file("state/outbox.sqlite")
        for arguments in [["stats"], ["peek", "3"], ["purge", "--yes"], ["purge"]] {
            let result = try await Self.queue(arguments, config: valid)
            #expect(result.status == .exited(1), "\(result.summary)")
            #expect(result.stderrText.contains("no outbox at \(database) (the gateway has not run yet)"), "\(result.summary)")
        }
        #expect(!FileManager.default.fileExists(atPath: database), "an inspection created the database")

        let badFilter = try await Self.queue(["purge", "--topic", "a/#/b", "--yes"], config: valid)
        #expect(badFilter.status != .exited(0), "\(badFilter.summary)")
        #expect(badFilter.stderrText.contains("'#' must be the last level"), "\(badFilter.summary)")
        let zero = try await Self.queue(["peek", "0"], config: valid)
        #expect(zero.status != .exited(0), "\(zero.summary)")
    }

    static func queue(_ arguments: [String], config: String) async throws -> ProcessResult {
        try await ProcessRunner.run(try GatewayBinary.path(), ["queue"] + arguments + ["--config", config], timeout: .seconds(60))
    }

    /// Runs a `--json` command that must succeed and print one JSON object.
    static func json(_ arguments: [String], config: String) async throws -> [String: Any] {
        let result = try await queue(arguments, config: config)
        guard result.succeeded,
              let object = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        else {
            throw HarnessError("expected one JSON object\n\(result.summary)")
        }
        return object
    }

    static func decodeBase64(_ value: Any?) -> String {
        guard let text = value as? String, let data = Data(base64Encoded: text) else { return "<not base64>" }
        return String(decoding: data, as: UTF8.self)
    }
}
