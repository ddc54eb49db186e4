import Foundation
import Testing

/// Proof 3 of the store-and-forward issue: a full outbox sheds queued QoS 0
/// first (oldest first) and only then refuses new messages, with a retry
/// hint; an acknowledged QoS 1 message is never evicted.
@Suite("Outbox capacity")
struct CapacityTests {
    /// One request's result, through either protocol.
    struct Answer: CustomStringConvertible {
        var payload: String
        var accepted: Bool
        var refusedWithHint: Bool
        var text: String
        var description: String { "\(payload): \(text)" }
    }

    /// POSTs `payload` to `/sensors/{device}/{kind}` (temperature: QoS 1,
    /// humidity: QoS 0 in the standard mappings) over CoAP or HTTP.
    static func send(_ gateway: GatewayProcess, coap: Bool, kind: String, payload: String) async throws -> Answer {
        let path = "/sensors/cap-\(coap ? "c" : "h")/\(kind)"
        if coap {
            let response = try await CoAP.post(port: gateway.coapPort, path: path, payload: Array(payload.utf8))
            return Answer(
                payload: payload, accepted: response.code == "2.04",
                refusedWithHint: response.code == "5.03" && (response.maxAge ?? 0) > 0 && !response.diagnostic.isEmpty,
                text: "CoAP \(response)"
            )
        }
        let response = try await HTTP.post(gateway.httpURL(path), body: Array(payload.utf8))
        return Answer(
            payload: payload, accepted: response.status == 202,
            refusedWithHint: response.status == 503 && (Int(response.header("Retry-After") ?? "") ?? 0) > 0 && !response.text.isEmpty,
            text: "HTTP \(response)"
        )
    }

    struct Levels: Equatable, CustomStringConvertible {
        var qos0: Double
        var qos1: Double
        var shed: Double
        var refused: Double
        var description: String { "queued QoS 0 \(qos0), QoS 1 \(qos1); shed \(shed), refused \(refused)" }

        init(qos0: Double, qos1: Double, shed: Double, refused: Double) {
            self.qos0 = qos0
            self.qos1 = qos1
            self.shed = shed
            self.refused = refused
        }

        init(_ metrics: PrometheusSamples) {
            qos0 = metrics.value("iotgw_outbox_messages", ["qos": "0"]) ?? -1
            qos1 = metrics.value("iotgw_outbox_messages", ["qos": "1"]) ?? -1
            shed = metrics.value("iotgw_messages_shed_total") ?? -1
            refused = metrics.value("iotgw_messages_refused_total", ["reason": "full"]) ?? -1
        }

        static func read(_ gateway: GatewayProcess) async throws -> Levels {
            Levels(try await PrometheusSamples.scrape(gateway))
        }
    }

    static func settings() -> GatewaySettings {
        GatewaySettings(outboxMaxMessages: 10, outboxExtra: ["qos0_when_offline: keep"])
    }

    @Test("max_messages 10, broker down: QoS 0 shed before any QoS 1 is refused; 5.03 + Max-Age / 503 + Retry-After; every acknowledged QoS 1 delivered")
    func shedThenRefuse() async throws {
        try await EndToEnd.run("capacity-shed-refuse", settings: Self.settings(), brokerDownAtStart: true) { env in
            let gateway = env.gateway
            var acknowledgedQoS1 = Set<String>()
            var refused = Set<String>()
            var qos0Sent = Set<String>()

            // Six QoS 0 and four QoS 1: exactly full, nothing shed yet.
            for index in 0..<6 {
                let answer = try await Self.send(gateway, coap: index % 2 == 0, kind: "humidity", payload: "cap-q0-\(index)")
                #expect(answer.accepted, "\(answer)")
                qos0Sent.insert(answer.payload)
            }
            for index in 0..<4 {
                let answer = try await Self.send(gateway, coap: index % 2 == 0, kind: "temperature", payload: "cap-q1-\(index)")
                #expect(answer.accepted, "\(answer)")
                if answer.accepted { acknowledgedQoS1.insert(answer.payload) }
            }
            var levels = try await Levels.read(gateway)
            #expect(levels == Levels(qos0: 6, qos1: 4, shed: 0, refused: 0), "\(levels)")

            // Ten more QoS 1, one at a time. Each must be accepted while any
            // QoS 0 is queued (shedding the oldest one), and may be refused
            // only once none is left.
            var firstRefusal: Int?
            for index in 4..<14 {
                let before = try await Levels.read(gateway)
                let answer = try await Self.send(gateway, coap: index % 2 == 0, kind: "temperature", payload: "cap-q1-\(index)")
                let after = try await Levels.read(gateway)
                if answer.accepted {
                    acknowledgedQoS1.insert(answer.payload)
                    #expect(before.qos0 > 0, "QoS 1 accepted with a full outbox and no QoS 0 to shed: \(answer); before: \(before)")
                    #expect(after == Levels(qos0: before.qos0 - 1, qos1: before.qos1 + 1, shed: before.shed + 1, refused: before.refused),
                            "\(answer): before \(before), after \(after)")
                } else {
                    refused.insert(answer.payload)
                    if firstRefusal == nil { firstRefusal = index }
                    #expect(before.qos0 == 0, "QoS 1 refused while \(before.qos0) QoS 0 were queued: \(answer)")
                    #expect(answer.refusedWithHint, "refusal without 5.03/503, retry hint or text: \(answer)")
                    #expect(after == Levels(qos0: 0, qos1: before.qos1, shed: before.shed, refused: before.refused + 1),
                            "\(answer): before \(before), after \(after)")
                }
            }
            #expect(firstRefusal == 10, "first QoS 1 refusal at \(String(describing: firstRefusal)); want 10 (after 6 sheds)")
            #expect(acknowledgedQoS1.count == 10 && refused.count == 4, "accepted \(acknowledgedQoS1.count), refused \(refused.count)")

            // Full of QoS 1 now: a QoS 0 reading is refused as well (nothing
            // left to shed; an acknowledged QoS 1 message is never evicted).
            for (index, coap) in [(100, true), (101, false)] {
                let answer = try await Self.send(gateway, coap: coap, kind: "humidity", payload: "cap-q0-\(index)")
                #expect(!answer.accepted && answer.refusedWithHint, "QoS 0 into an outbox full of QoS 1: \(answer)")
                if !answer.accepted { refused.insert(answer.payload) }
            }
            levels = try await Levels.read(gateway)
            #expect(levels == Levels(qos0: 0, qos1: 10, shed: 6, refused: 6), "\(levels)")
            let metrics = try await PrometheusSamples.scrape(gateway)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "coap", "outcome": "unavailable"]) == 3)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "http", "outcome": "unavailable"]) == 3)
            #expect(metrics.value("iotgw_messages_accepted_total", ["qos": "0"]) == 6)
            #expect(metrics.value("iotgw_messages_accepted_total", ["qos": "1"]) == 10)

            // The broker returns: every acknowledged QoS 1 arrives; nothing
            // shed or refused ever does.
            try await env.broker.start()
            try await env.subscriber.waitForAll(acknowledgedQoS1, timeout: MosquittoBroker.afterOutage)
            try await gateway.waitForMetrics("the outbox to drain") {
                $0.value("iotgw_outbox_messages", ["qos": "1"]) == 0
                    && $0.value("iotgw_messages_delivered_total", ["qos": "1"]) == 10
            }
            let received = try await env.subscriber.settle(for: .seconds(1))
            let accounting = Accounting(acknowledged: acknowledgedQoS1, received: received)
            let texts = Set(received.map(\.text))
            print("capacity (max_messages 10): shed 6 QoS 0, refused 6 (first QoS 1 refusal after the last QoS 0 was shed); \(accounting)")
            #expect(accounting.lost.isEmpty, "\(accounting)")
            #expect(texts.isDisjoint(with: refused), "a refused message was published: \(texts.intersection(refused))")
            #expect(texts.isDisjoint(with: qos0Sent), "a shed QoS 0 message was published: \(texts.intersection(qos0Sent))")
            let final = try await PrometheusSamples.scrape(gateway)
            #expect(final.value("iotgw_messages_delivered_total", ["qos": "0"]) == 0)
        }
    }

    @Test("shedding takes the oldest QoS 0 first; the younger ones are still sent once connected (qos0_when_offline: keep)")
    func oldestQoS0First() async throws {
        try await EndToEnd.run("capacity-oldest-first", settings: Self.settings(), brokerDownAtStart: true) { env in
            let gateway = env.gateway
            let qos0 = (0..<8).map { "old-q0-\($0)" }
            let qos1 = (0..<5).map { "old-q1-\($0)" }
            for (index, payload) in qos0.enumerated() {
                let answer = try await Self.send(gateway, coap: index % 2 == 0, kind: "humidity", payload: payload)
                try #require(answer.accepted, "\(answer)")
            }
            for (index, payload) in qos1.enumerated() {
                let answer = try await Self.send(gateway, coap: index % 2 == 1, kind: "temperature", payload: payload)
                try #require(answer.accepted, "\(answer)")
            }
            // 8 + 5 = 13 > 10: the three oldest QoS 0 made room.
            let levels = try await Levels.read(gateway)
            #expect(levels == Levels(qos0: 5, qos1: 5, shed: 3, refused: 0), "\(levels)")

            try await env.broker.start()
            try await env.subscriber.waitForAll(Set(qos1), timeout: MosquittoBroker.afterOutage)
            // The five kept QoS 0 are written to the broker once connected.
            // (Whether the subscriber sees them depends on it having
            // reconnected first — QoS 0 is not queued for an offline
            // session — so the count comes from the gateway's metrics.)
            try await gateway.waitForMetrics("the kept QoS 0 to be sent") {
                $0.value("iotgw_messages_delivered_total", ["qos": "0"]) == 5
                    && $0.value("iotgw_outbox_messages", ["qos": "0"]) == 0
                    && $0.value("iotgw_messages_delivered_total", ["qos": "1"]) == 5
            }
            let received = try await env.subscriber.settle(for: .seconds(1))
            let receivedQoS0 = Set(received.map(\.text)).intersection(qos0)
            #expect(receivedQoS0.isSubset(of: Set(qos0.suffix(5))), "a shed (oldest) QoS 0 was published: \(receivedQoS0.sorted())")
            print("capacity oldest-first: shed \(qos0.prefix(3).joined(separator: ",")); subscriber saw \(receivedQoS0.count) of the 5 kept QoS 0")
        }
    }
}
