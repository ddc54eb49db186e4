import Foundation
import Testing

/// Issue 4, proof 1 and the run-time half of proof 4: a mosquitto configured
/// like AWS IoT Core (client certificates, QoS ≤ 1, AWS's largest packet,
/// ACL by certificate identity; see `AWSLikeBroker`) receives exactly what a
/// gateway under `profile: aws-iot-core` publishes on topics at the limits —
/// 256 bytes, 7 slashes, Basic Ingest with 7 slashes after its prefix,
/// classic and named shadow updates, 128 KiB payloads raw and enveloped —
/// and the requests that would break a limit are refused with 4.00 / 400 or
/// 4.13 / 413 and never published.
@Suite("AWS IoT Core profile against an AWS-like broker")
struct AWSProfileTests {
    static let longPrefix = "dt/aws-it/"
    /// With a 4-byte device name the `long` topic is exactly 256 bytes.
    static let padding = String(repeating: "p", count: AWSLikeBroker.maxTopicBytes - longPrefix.utf8.count - 4 - 1)
    static func longTopic(_ device: String) -> String { longPrefix + device + "/" + padding }

    static let rule = "gw_rule"

    static let mappings = """
        - name: long
          resource: /long/{device}
          auth: anonymous
          topic: \(longPrefix){device}/\(padding)
          qos: 1
        - name: seven
          resource: /seven/{device}
          auth: anonymous
          topic: dt/a/b/c/d/e/{device}/t
          qos: 1
        - name: deep
          resource: /deep/{path*}
          auth: anonymous
          topic: dt/deep/{path*}
          qos: 1
        - name: ingest
          resource: /ingest/{device}
          auth: anonymous
          topic: $aws/rules/\(rule)/a/b/c/d/e/f/{device}/t
          qos: 1
        - name: ingest-any
          resource: /ingest-any/{rest*}
          auth: anonymous
          topic: $aws/rules/\(rule)/{rest*}
          qos: 0
        - name: shadow
          resource: /shadow/{thing}
          auth: anonymous
          topic: $aws/things/{thing}/shadow/update
          qos: 1
        - name: named-shadow
          resource: /shadow/{thing}/{shadow}
          auth: anonymous
          topic: $aws/things/{thing}/shadow/name/{shadow}/update
          qos: 1
        - name: envelope
          resource: /env/{device}
          auth: anonymous
          topic: dt/env/{device}
          qos: 1
          payload: envelope

        """

    /// What the gateway's certificate may publish to: exactly the topics of
    /// the mappings above, nothing else.
    static let gatewayWrites = [
        "\(longPrefix)+/\(padding)",
        "dt/a/b/c/d/e/+/t",
        "dt/deep/#",
        "$aws/rules/\(rule)/#",
        "$aws/things/+/shadow/update",
        "$aws/things/+/shadow/name/+/update",
        "dt/env/+",
    ]
    /// `#` does not match topics that start with `$`: subscribe to both.
    static let subscriberFilters = ["dt/#", "$aws/#"]

    static func settings(protocol version: String) -> GatewaySettings {
        var settings = GatewaySettings()
        settings.profile = "aws-iot-core"
        // The test is about limits, not throttling: far above what it sends.
        settings.upstreamExtra = ["publish_rate: 1000", "protocol: \(version)"]
        settings.mappings = mappings
        // Ingress takes more than AWS does, so that the 413s below come from
        // the profile's payload limit, not from the listeners' own.
        settings.httpMaxBody = 256 * 1024
        settings.coapMaxBody = 256 * 1024
        return settings
    }

    static func slashes(_ topic: String) -> Int { topic.filter { $0 == "/" }.count }

    /// Binary test data, different per `seed`.
    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ Int(seed) &* 7 &+ ($0 >> 8)) }
    }

    struct Expected: Hashable, CustomStringConvertible {
        var topic: String
        var payload: [UInt8]
        var qos: Int
        var description: String { "\(topic.prefix(80))\(topic.count > 80 ? "…" : "") q\(qos) \(payload.count) bytes" }
    }

    @Test("the AWS-like broker itself: allowed topic delivered; ACL, QoS 2 and one byte over the largest AWS packet refused")
    func brokerSelfCheck() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory("aws-broker-check")
        defer { directory.remove() }
        let broker = try AWSLikeBroker.make(
            certificates: certificates, directory: directory,
            gatewayWrites: Self.gatewayWrites, subscriberReads: Self.subscriberFilters
        )
        do {
            try await broker.start()
            let subscriber = try await Subscriber.started(on: broker, topicFilters: Self.subscriberFilters, persistentSession: false)
            /// mosquitto_pub as the gateway's certificate identity.
            func publishAsGateway(_ topic: String, _ payload: [UInt8], qos: Int) async throws -> ProcessResult {
                let file = try directory.write(payload, to: "pub-\(UUID().uuidString).bin")
                return try await ProcessRunner.run(Tools.mosquittoPub, [
                    "-h", "localhost", "-p", String(broker.port), "--cafile", certificates.caFile,
                    "--cert", certificates.gateway.certificate, "--key", certificates.gateway.key,
                    "-i", "aws-check-\(UUID().uuidString.prefix(8))", "-q", String(qos), "-t", topic, "-f", file,
                ], timeout: .seconds(15))
            }
            let longest = Self.longTopic("chk1")
            #expect(longest.utf8.count == 256)
            let largest = Self.bytes(AWSLikeBroker.maxPayloadBytes, seed: 1)
            let allowed = try await publishAsGateway("dt/deep/check", Array("ok".utf8), qos: 1)
            #expect(allowed.succeeded, "\(allowed.summary)")
            let biggest = try await publishAsGateway(longest, largest, qos: 1)
            #expect(biggest.succeeded, "the largest AWS publish must pass: \(biggest.summary)")
            // Each of these must not be delivered.
            _ = try await publishAsGateway("dt/not-granted", Array("acl".utf8), qos: 1)
            _ = try await publishAsGateway("dt/deep/qos2", Array("qos2".utf8), qos: 2)
            _ = try await publishAsGateway(Self.longTopic("chk2"), largest + [0], qos: 1)

            try await subscriber.waitFor(count: 2)
            let received = try await subscriber.settleTimed(for: .seconds(1))
            #expect(received.map(\.topic) == ["dt/deep/check", longest], "\(received)")
            #expect(received.last?.message.payload == largest)
            // Refused for the reasons meant (mosquitto 2.0's log lines): the
            // QoS 2 and the oversize publish are on topics the ACL allows.
            let log = try await eventually(timeout: .seconds(10), interval: .milliseconds(200), "the broker to log both refusals") {
                let log = broker.log
                return log.contains("Too high QoS in PUBLISH") && log.contains("oversize packet") ? log : nil
            }
            print("AWS-like broker: max_packet_size \(AWSLikeBroker.maxPacketSize()) (largest AWS publish: \(AWSLikeBroker.largestPublishOnTheWire) bytes on the wire)")
            print("AWS-like broker log, refusals:\n" + log.split(separator: "\n").filter {
                $0.localizedCaseInsensitiveContains("denied") || $0.localizedCaseInsensitiveContains("disconnect")
                    || $0.localizedCaseInsensitiveContains("qos") || $0.localizedCaseInsensitiveContains("large")
            }.joined(separator: "\n"))
            await subscriber.stop()
            await broker.shutdown()
        } catch {
            await broker.shutdown()
            throw HarnessError("\(error)\n--- broker log ---\n\(tail(broker.log))")
        }
    }

    @Test(
        "topics and payloads at AWS's limits are all delivered exactly; one byte, one slash or one payload byte more is 400 / 413 and never published",
        arguments: ["mqtt311", "mqtt5"]
    )
    func limitsEndToEnd(_ version: String) async throws {
        // The test data are what their names say.
        #expect(Self.longTopic("d256").utf8.count == 256)
        #expect(Self.longTopic("dé5").utf8.count == 256 && Self.longTopic("dé5").count == 255)
        #expect(Self.slashes("dt/a/b/c/d/e/dev1/t") == 7)
        #expect(Self.slashes("dt/deep/a/b/c/d/e/f") == 7)
        #expect(Self.slashes("a/b/c/d/e/f/dev1/t") == 7)

        try await AWSLikeEndToEnd.run(
            "aws-limits-\(version)", settings: Self.settings(protocol: version),
            gatewayWrites: Self.gatewayWrites, subscriberReads: Self.subscriberFilters, filters: Self.subscriberFilters,
            mqtt5: version == "mqtt5"
        ) { env in
            let gateway = env.gateway
            var expected: [Expected] = []

            func http(_ path: String, _ body: [UInt8], contentType: String = "application/octet-stream") async throws -> HTTPResponse {
                try await HTTP.request("POST", gateway.httpURL(path), body: body, headers: ["Content-Type": contentType], timeout: 30)
            }
            func coap(_ path: String, _ body: [UInt8]) async throws -> CoAPResponse {
                try await CoAP.request("post", port: gateway.coapPort, path: path, payload: body, contentFormat: 42, blockSize: 1024, wait: 30)
            }
            func accepted(_ response: HTTPResponse, _ what: String, topic: String, _ body: [UInt8], qos: Int = 1) {
                #expect(response.status == 202, "\(what): \(response)")
                expected.append(Expected(topic: topic, payload: body, qos: qos))
            }
            func accepted(_ response: CoAPResponse, _ what: String, topic: String, _ body: [UInt8], qos: Int = 1) {
                #expect(response.code == "2.04", "\(what): \(response)")
                expected.append(Expected(topic: topic, payload: body, qos: qos))
            }

            // 256 bytes exactly, counted in UTF-8 bytes: "dé5" is 3 characters, 4 bytes.
            var body = Array("topic of 256 bytes".utf8)
            accepted(try await http("/long/d256", body), "256-byte topic", topic: Self.longTopic("d256"), body)
            body = Array("256 bytes, 255 characters".utf8)
            accepted(try await http("/long/d%C3%A95", body), "256-byte topic with a 2-byte character",
                     topic: Self.longTopic("dé5"), body)
            body = Array("coap 256".utf8)
            accepted(try await coap("/long/c256", body), "CoAP, 256-byte topic", topic: Self.longTopic("c256"), body)

            // 7 slashes: fixed in the template, and made by a {path*} value.
            body = Array("seven".utf8)
            accepted(try await coap("/seven/dev1", body), "7 slashes (template)", topic: "dt/a/b/c/d/e/dev1/t", body)
            body = Array("deep".utf8)
            accepted(try await http("/deep/a/b/c/d/e/f", body), "7 slashes via {path*}", topic: "dt/deep/a/b/c/d/e/f", body)

            // Basic Ingest: the $aws/rules/<rule>/ prefix does not count; 7 after it.
            body = Array(#"{"basic":"ingest"}"#.utf8)
            accepted(try await http("/ingest/dev1", body, contentType: "application/json"), "Basic Ingest, 7 slashes after the prefix",
                     topic: "$aws/rules/\(Self.rule)/a/b/c/d/e/f/dev1/t", body)
            body = Array("ingest-any".utf8)
            accepted(try await coap("/ingest-any/r1/r2/r3/r4/r5/r6/r7/r8", body), "Basic Ingest via {rest*}, QoS 0",
                     topic: "$aws/rules/\(Self.rule)/r1/r2/r3/r4/r5/r6/r7/r8", body, qos: 0)

            // Device Shadow updates, the thing (and shadow) name from the path.
            body = Array(#"{"state":{"reported":{"t":21.5}}}"#.utf8)
            accepted(try await http("/shadow/thing-1", body, contentType: "application/json"), "classic shadow update",
                     topic: "$aws/things/thing-1/shadow/update", body)
            body = Array(#"{"state":{"reported":{"mode":"eco"}}}"#.utf8)
            accepted(try await coap("/shadow/thing_2/config", body), "named shadow update",
                     topic: "$aws/things/thing_2/shadow/name/config/update", body)

            // The largest publish AWS accepts: 128 KiB on a 256-byte topic,
            // through HTTP and through CoAP Block1.
            body = Self.bytes(AWSLikeBroker.maxPayloadBytes, seed: 2)
            accepted(try await http("/long/D256", body), "128 KiB (HTTP)", topic: Self.longTopic("D256"), body)
            body = Self.bytes(AWSLikeBroker.maxPayloadBytes, seed: 3)
            accepted(try await coap("/long/C256", body), "128 KiB (CoAP Block1)", topic: Self.longTopic("C256"), body)

            // The envelope's own size is fixed for a given request shape
            // (timestamps have fixed width): measure it, then fill the rest.
            let probe = Array("x".utf8)
            accepted(try await http("/env/e1", probe, contentType: "text/plain"), "envelope probe", topic: "dt/env/e1", probe)
            let probed = try await env.subscriber.waitForTimed(count: expected.count, timeout: .seconds(60))
            let envelope = try #require(probed.first { $0.topic == "dt/env/e1" }, "\(probed)")
            let overhead = envelope.message.payload.count - probe.count
            // Delivery is checked by payload below; the probe's is the envelope.
            expected[expected.count - 1].payload = envelope.message.payload
            let fill = [UInt8](repeating: UInt8(ascii: "a"), count: AWSLikeBroker.maxPayloadBytes - overhead)
            let exactly = try await http("/env/e2", fill, contentType: "text/plain")
            #expect(exactly.status == 202, "envelope of exactly 128 KiB: \(exactly)")

            // ---- Refused: each would break a limit. Nothing of these may be published.
            for (path, why) in [("/long/d2567", "5-byte value: 257 bytes"), ("/long/d%C3%A956", "5 bytes in 4 characters: 257 bytes")] {
                let response = try await http(path, Array("too long".utf8))
                #expect(response.status == 400, "\(why): \(response)")
                #expect(response.text.contains("257 bytes") && response.text.contains("256"), "\(why): reason '\(response.text)'")
            }
            let coapLong = try await coap("/long/c2567", Array("too long".utf8))
            #expect(coapLong.code == "4.00", "CoAP 257-byte topic: \(coapLong)")
            #expect(coapLong.diagnostic.contains("257 bytes"), "CoAP 257-byte topic: '\(coapLong.diagnostic)'")

            let deep = try await http("/deep/a/b/c/d/e/f/g", Array("too deep".utf8))
            #expect(deep.status == 400, "8 slashes via {path*}: \(deep)")
            #expect(deep.text.contains("8") && deep.text.contains("'/'"), "8 slashes: reason '\(deep.text)'")
            let coapDeep = try await coap("/deep/a/b/c/d/e/f/g", Array("too deep".utf8))
            #expect(coapDeep.code == "4.00", "CoAP 8 slashes: \(coapDeep)")
            #expect(!coapDeep.diagnostic.isEmpty, "CoAP 8 slashes: no diagnostic")

            let ingestDeep = try await http("/ingest-any/r1/r2/r3/r4/r5/r6/r7/r8/r9", Array("too deep".utf8))
            #expect(ingestDeep.status == 400, "Basic Ingest with 8 slashes after the prefix: \(ingestDeep)")

            let badThing = try await http("/shadow/bad.thing", Array("{}".utf8), contentType: "application/json")
            #expect(badThing.status == 400, "shadow topic with a name AWS does not allow: \(badThing)")
            #expect(badThing.text.contains("bad.thing"), "reason '\(badThing.text)'")

            let over = Self.bytes(AWSLikeBroker.maxPayloadBytes + 1, seed: 4)
            let httpOver = try await http("/long/E256", over)
            #expect(httpOver.status == 413, "128 KiB + 1 (HTTP): \(httpOver)")
            #expect(httpOver.text.contains("131073") && httpOver.text.contains("131072"), "reason '\(httpOver.text)'")
            let coapOver = try await coap("/long/F256", over)
            #expect(coapOver.code == "4.13", "128 KiB + 1 (CoAP Block1): \(coapOver)")
            #expect(!coapOver.diagnostic.isEmpty, "CoAP 4.13 without a diagnostic")
            let envelopeOver = try await http("/env/e3", fill + [UInt8(ascii: "a")], contentType: "text/plain")
            #expect(envelopeOver.status == 413, "envelope of 128 KiB + 1: \(envelopeOver)")
            #expect(envelopeOver.text.contains("envelope") && envelopeOver.text.contains("131073"), "reason '\(envelopeOver.text)'")

            // ---- Everything accepted arrives exactly once; nothing refused does.
            try await env.subscriber.waitFor(count: expected.count + 1, timeout: .seconds(60))
            let received = try await env.subscriber.settleTimed(for: .seconds(1))
            let envelopeMax = received.first { $0.topic == "dt/env/e2" }
            #expect(envelopeMax?.message.payload.count == AWSLikeBroker.maxPayloadBytes,
                    "envelope published at exactly 128 KiB: \(envelopeMax.map { "\($0.message.payload.count)" } ?? "missing")")
            let got = received.filter { $0.topic != "dt/env/e2" }.map {
                Expected(topic: $0.topic, payload: $0.message.payload, qos: $0.message.qos)
            }
            #expect(received.count == expected.count + 1, "received \(received.count), want \(expected.count + 1)")
            let missing = expected.filter { !got.contains($0) }
            let extra = got.filter { !expected.contains($0) }
            #expect(missing.isEmpty, "not delivered: \(missing)")
            #expect(extra.isEmpty, "delivered but not expected (a refused request was published?): \(extra)")
            #expect(Set(got.map(\.topic)).count == got.count, "a topic was delivered twice: \(got)")
            for message in received {
                #expect(message.message.payload.count <= AWSLikeBroker.maxPayloadBytes)
                #expect(message.topic.utf8.count <= AWSLikeBroker.maxTopicBytes)
            }

            // The broker never had a reason to drop the gateway.
            let log = env.broker.log
            let connects = log.components(separatedBy: "as gw-test ").count - 1
            #expect(connects == 1, "the gateway connected \(connects) times (AWS-like broker disconnected it?)\n\(tail(log, lines: 30))")
            #expect(!log.contains("Client gw-test disconnected"), "\(tail(log, lines: 30))")
            print("AWS limits (\(version)): \(expected.count + 1) messages delivered (largest topic \(received.map { $0.topic.utf8.count }.max() ?? 0) bytes, largest payload \(received.map { $0.message.payload.count }.max() ?? 0) bytes, envelope overhead \(overhead) bytes)")
        }
    }
}
