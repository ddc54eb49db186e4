import Foundation
import Synchronization

/// CoAP POSTs over DTLS one after another through the real
/// `coap-client-openssl` (a new process, so a new DTLS session, per request)
/// until `stop`, recording each request's final code (nil when none came:
/// the gateway was down or died mid-request). Sequential, so for one topic
/// acceptance order is send order.
final class DTLSStream: Sendable {
    struct Record: Sendable {
        var sequence: Int
        var payload: String
        var code: String?
    }

    let answered = Atomic<Int>(0)
    private let stopRequested = Atomic<Bool>(false)

    init() {}

    func stop() { stopRequested.store(true, ordering: .relaxed) }

    func run(
        port: UInt16,
        path: String,
        security: CoAPSecurity,
        payload: @Sendable (Int) -> String,
        pause: Duration = .milliseconds(10),
        limit: Int = 100_000
    ) async -> [Record] {
        var records: [Record] = []
        var sequence = 0
        while !stopRequested.load(ordering: .relaxed), sequence < limit, !Task.isCancelled {
            let body = payload(sequence)
            // A short wait: a gateway killed mid-request must not stall the stream.
            let response = try? await CoAP.attempt("post", port: port, path: path, payload: Array(body.utf8), wait: 3, security: security).0
            if response != nil { answered.add(1, ordering: .relaxed) }
            records.append(Record(sequence: sequence, payload: body, code: response?.code))
            sequence += 1
            try? await Task.sleep(for: response == nil ? max(pause, .milliseconds(50)) : pause)
        }
        return records
    }
}
