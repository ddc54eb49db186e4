import Foundation
import Testing

/// `batch: true`: a JSON array or NDJSON body becomes one message per
/// element, stored in one transaction, answered with its count; one bad
/// element refuses all of it.
@Suite("Batches")
struct BatchTests {
    static let mappings = """
        - name: batch
          resource: /batch/{device}
          auth: anonymous
          topic: it/batch/{device}
          qos: 1
          batch: true
        - name: envelope-batch
          resource: /envbatch/{site}/{device}
          auth: anonymous
          topic: it/envbatch/{site}
          qos: 1
          payload: envelope
          batch: true

        """

    static let lines = 10_000

    @Test("10,000-line NDJSON over HTTP: 202 {\"accepted\":10000}, ONE outbox commit of 10,000, all 10,000 delivered in order")
    func ndjsonTenThousand() async throws {
        // About 400 KB of lines: over the 128 KiB default.
        let settings = GatewaySettings(mappings: Self.mappings, httpMaxBody: 1 << 20)
        try await EndToEnd.run("batch-ndjson", settings: settings) { env in
            let gateway = env.gateway
            let lines = (0..<Self.lines).map { #"{"seq":\#($0),"pad":"ndjson batch line \#($0)"}"# }
            let body = Array((lines.joined(separator: "\n") + "\n").utf8)

            // iotgw_commit_batch_size observes one value per commit that
            // stored messages: its count is commits, its sum messages.
            let before = try await PrometheusSamples.scrape(gateway)
            let commitsBefore = try #require(before.value("iotgw_commit_batch_size_count"), "no commit histogram: \(before)")
            let storedBefore = try #require(before.value("iotgw_commit_batch_size_sum"))
            let upTo2048Before = try #require(before.bucket("iotgw_commit_batch_size", le: 2048))

            let answer = try await HTTP.request("POST", gateway.httpURL("/batch/big"), body: body,
                                                headers: ["Content-Type": "application/x-ndjson"], timeout: 60)
            #expect(answer.status == 202, "\(answer)")
            #expect(answer.text == #"{"accepted":\#(Self.lines)}"#, "answer body: '\(answer.text)'")
            #expect(answer.header("Content-Type")?.hasPrefix("application/json") == true, "\(answer)")

            // 202 comes after the commit, and the histogram is recorded before the submitters hear of it.
            let after = try await PrometheusSamples.scrape(gateway)
            #expect(after.value("iotgw_commit_batch_size_count") == commitsBefore + 1,
                    "commits: \(commitsBefore) before, \(after.value("iotgw_commit_batch_size_count") ?? -1) after; want exactly one more")
            #expect(after.value("iotgw_commit_batch_size_sum") == storedBefore + Double(Self.lines),
                    "messages stored: \(storedBefore) before, \(after.value("iotgw_commit_batch_size_sum") ?? -1) after")
            // Past the largest bucket: no commit of 2048 or fewer was made.
            #expect(after.bucket("iotgw_commit_batch_size", le: 2048) == upTo2048Before, "\(after)")

            let received = try await env.subscriber.waitFor(count: Self.lines, timeout: .seconds(60))
            #expect(received.count == Self.lines, "extra messages: \(received.count)")
            #expect(received.allSatisfy { $0.topic == "it/batch/big" && $0.qos == 1 }, "\(received.prefix(3))")
            // Each line exactly as written, in the order written.
            let texts = received.map(\.text)
            if texts != lines {
                let first = zip(texts, lines).enumerated().first { $0.element.0 != $0.element.1 }
                Issue.record("lines differ or are out of order; first difference at \(first?.offset ?? -1): \(first.map { "\($0.element.0) != \($0.element.1)" } ?? "count")")
            }
        }
    }

    @Test("one invalid line in the middle: 400 / 4.00 naming its element and line, nothing of the batch published")
    func invalidLine() async throws {
        try await EndToEnd.run("batch-invalid", settings: GatewaySettings(mappings: Self.mappings)) { env in
            let gateway = env.gateway
            // Line 2 is blank (skipped), so element 2 is on line 4.
            let body = Array("{\"seq\":0}\n\n{\"seq\":1}\n{\"seq\":2, oops}\n{\"seq\":3}\n".utf8)
            let http = try await HTTP.post(gateway.httpURL("/batch/mixed"), body: body, contentType: "application/x-ndjson")
            #expect(http.status == 400, "\(http)")
            #expect(http.text.contains("element 2 (line 4)"), "diagnostic should name element 2 on line 4: '\(http.text)'")
            // CoAP has no Content-Format for NDJSON: an undeclared body whose lines are JSON is read as NDJSON.
            let coap = try await CoAP.post(port: gateway.coapPort, path: "/batch/mixed", payload: body)
            #expect(coap.code == "4.00", "\(coap)")
            #expect(coap.diagnostic.contains("element 2 (line 4)"), "\(coap)")
            // A JSON array that is not valid JSON.
            let array = try await HTTP.post(gateway.httpURL("/batch/mixed"), body: Array(#"[{"seq":0},{"seq":1,}]"#.utf8),
                                            contentType: "application/json")
            #expect(array.status == 400 && !array.text.isEmpty, "\(array)")

            let good = ["{\"seq\":10}", "[\"ok\"]"]
            let ok = try await HTTP.post(gateway.httpURL("/batch/mixed"), body: Array(good.joined(separator: "\r\n").utf8),
                                         contentType: "application/x-ndjson")
            #expect(ok.status == 202 && ok.text == #"{"accepted":2}"#, "\(ok)")
            let received = try await env.subscriber.waitFor(count: 2)
            #expect(received.map(\.text) == good, "a refused batch was published, or the good one differs: \(received)")
        }
    }

    @Test("JSON array with payload: envelope: one envelope per element, over HTTP and CoAP")
    func envelopePerElement() async throws {
        try await EndToEnd.run("batch-envelope", settings: GatewaySettings(mappings: Self.mappings)) { env in
            let gateway = env.gateway
            let elements = [#"{"t":1}"#, #"{"t":2,"tags":["x","y"]}"#, "3.5", #""text""#, "null", "[1,[2]]"]
            let body = Array(("[ " + elements.joined(separator: " ,\n ") + " ]").utf8)
            let sentAt = Date()
            let http = try await HTTP.post(gateway.httpURL("/envbatch/site-a/d1"), body: body, contentType: "application/json")
            #expect(http.status == 202 && http.text == #"{"accepted":\#(elements.count)}"#, "\(http)")
            let coap = try await CoAP.post(port: gateway.coapPort, path: "/envbatch/site-b/d2", payload: body, contentFormat: 50)
            #expect(coap.code == "2.04" && coap.bodyText == #"{"accepted":\#(elements.count)}"#, "\(coap) '\(coap.bodyText)'")

            let received = try await env.subscriber.waitFor(count: 2 * elements.count)
            #expect(received.count == 2 * elements.count, "\(received)")
            for (site, device, proto) in [("site-a", "d1", "http"), ("site-b", "d2", "coap")] {
                let mine = received.filter { $0.topic == "it/envbatch/\(site)" }
                #expect(mine.count == elements.count, "\(site): \(mine)")
                for (message, element) in zip(mine, elements) {
                    let envelope = try EnvelopeTests.envelope(message)
                    EnvelopeTests.checkCommon(envelope, protocol: proto, method: "POST", resource: "/envbatch/\(site)/\(device)",
                                              vars: ["site": site, "device": device], sentAt: sentAt)
                    #expect(envelope["content_type"] as? String == "application/json", "\(envelope)")
                    #expect(envelope["payload_encoding"] == nil, "\(envelope)")
                    let want = try JSONSerialization.jsonObject(with: Data(element.utf8), options: .fragmentsAllowed)
                    let got = envelope["payload"] ?? "(missing)"
                    #expect(NSArray(object: got) == NSArray(object: want), "\(site): payload \(got), want \(element)")
                }
            }
        }
    }
}
