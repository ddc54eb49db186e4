import Foundation
import Testing

/// Acceptance 3, as a new user would try it: thousands of CoAP CON requests
/// from dozens of source ports and thousands of HTTP POSTs on keep-alive
/// connections — all acknowledged, all received, none missing. No timing
/// assertions: speed belongs to bench/.
@Suite("Load")
struct LoadTests {
    @Test("3000 CoAP CON from 50 source ports and 3000 HTTP POSTs on 10 keep-alive connections: all 2.04/202, all received")
    func thousands() async throws {
        try await EndToEnd.run("load") { env in
            let gateway = env.gateway
            let coapCount = 3000, coapSockets = 50
            let requests = (0..<coapCount).map {
                CoAPLoad.Request(path: ["sensors", "coap-\($0 % coapSockets)", "temperature"],
                                 payload: Array("coap-load-\($0)".utf8), contentFormat: 0)
            }
            let clock = ContinuousClock()
            let coapStarted = clock.now
            let outcome = try await CoAPLoad().run(port: gateway.coapPort, requests: requests, sockets: coapSockets, window: 4,
                                                   timeout: .seconds(120))
            let coapTook = clock.now - coapStarted
            #expect(outcome.histogram == ["2.04": coapCount], "CoAP responses: \(outcome.histogram)")

            // HTTP: 10 curl processes at once, 300 POSTs each, one connection each.
            let httpClients = 10, perClient = 300
            let httpStarted = clock.now
            let results = try await withThrowingTaskGroup(of: [(topic: String, status: Int, newConnection: Bool)].self) { group in
                for client in 0..<httpClients {
                    let devices = (0..<perClient).map { "http-\(client)-\($0)" }
                    let urls = devices.map { gateway.httpURL("/sensors/\($0)/temperature") }
                    group.addTask {
                        let answers = try await HTTP.postMany(urls, body: Array(#"{"rh":50}"#.utf8))
                        return zip(devices, answers).map { ("it/sensors/\($0)/temperature", $1.status, $1.newConnection) }
                    }
                }
                var all: [(topic: String, status: Int, newConnection: Bool)] = []
                for try await part in group { all += part }
                return all
            }
            let httpTook = clock.now - httpStarted
            let statuses = results.reduce(into: [Int: Int]()) { $0[$1.status, default: 0] += 1 }
            #expect(statuses == [202: httpClients * perClient], "HTTP statuses: \(statuses)")
            let connections = results.filter(\.newConnection).count
            #expect(connections <= httpClients * 3, "\(connections) connections for \(httpClients) keep-alive clients")

            // Everything acknowledged must arrive (whatever else failed above).
            let acknowledged = outcome.acknowledged
            let httpAcknowledged = Set(results.filter { $0.status == 202 }.map(\.topic))
            let received = try await env.subscriber.waitUntil(timeout: .seconds(120), "all acknowledged CoAP payloads and HTTP topics") { messages in
                acknowledged.isSubset(of: Set(messages.map(\.text)))
                    && httpAcknowledged.isSubset(of: Set(messages.map(\.topic)))
            }
            let accounting = Accounting(acknowledged: acknowledged, received: received.filter { $0.topic.hasPrefix("it/sensors/coap-") })
            #expect(accounting.lost.isEmpty, "CoAP: \(accounting)")
            #expect(received.allSatisfy { $0.qos == 1 }, "QoS 1 mapping delivered at QoS 0")
            print("load: CoAP \(coapCount) in \(coapTook), HTTP \(httpClients * perClient) in \(httpTook) over \(connections) connections; \(accounting)")
        }
    }
}
