import Foundation
import Testing

/// The last row of the status table: an internal failure is 5.00 / 500 with
/// a diagnostic, the gateway survives it, and what it had acknowledged before
/// is still delivered.
///
/// The failure is a storage write error (EIO), injected with a tiny
/// LD_PRELOAD shim around `pwrite64` that fails while a trigger file exists.
/// (A full disk is not this row: the gateway answers that as 5.03 / 503.)
/// The shim is compiled with the toolchain's clang; without one the test is
/// skipped, not passed.
@Suite("Internal failure")
struct InternalErrorTests {

    @Test("storage write failure: 5.00 / 500 with a diagnostic; the gateway survives and delivers what it acknowledged",
          .enabled(if: FaultShim.compiler != nil, "no C compiler (clang/cc) to build the fault-injection shim"))
    func storageFailure() async throws {
        var trigger = ""
        try await EndToEnd.run("status-500", brokerDownAtStart: true, gatewayEnvironment: { directory in
            let library = try await FaultShim.build(FaultShim.pwrite(.fail), named: "fault", in: directory)
            trigger = directory.file("fail-writes")
            return ["LD_PRELOAD": library, FaultShim.triggerVariable: trigger]
        }) { env in
            let gateway = env.gateway
            let before = try await HTTP.post(gateway.httpURL("/sensors/before/temperature"), body: Array("before".utf8))
            #expect(before.status == 202, "\(before)")

            _ = FileManager.default.createFile(atPath: trigger, contents: nil)
            let coap = try await CoAP.post(port: gateway.coapPort, path: "/sensors/failing/temperature", payload: Array("f1".utf8))
            #expect(coap.code == "5.00" && coap.maxAge == 0, "CoAP while storage writes fail: \(coap)")
            #expect(!coap.diagnostic.isEmpty, "5.00 without diagnostic text")
            let http = try await HTTP.post(gateway.httpURL("/sensors/failing/temperature"), body: Array("f2".utf8))
            #expect(http.status == 500, "HTTP while storage writes fail: \(http)")
            #expect(!http.text.isEmpty, "500 without diagnostic text")
            #expect(gateway.isRunning, "the gateway died on a storage error")

            // Storage works again: the gateway takes readings again, and what it
            // acknowledged is delivered once the broker is back.
            try FileManager.default.removeItem(atPath: trigger)
            let after = try await eventually(timeout: .seconds(20), interval: .milliseconds(500), "accepting again after the fault") { () -> HTTPResponse? in
                let response = try await HTTP.post(gateway.httpURL("/sensors/after/temperature"), body: Array("after".utf8))
                return response.status == 202 ? response : nil
            }
            #expect(after.status == 202)
            try await env.broker.start()
            let received = try await env.subscriber.waitForAll(["before", "after"], timeout: MosquittoBroker.afterOutage)
            #expect(!received.contains { $0.text == "f1" || $0.text == "f2" }, "a refused message was published: \(received)")
        }
    }
}
