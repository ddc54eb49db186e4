import Foundation
import Synchronization

/// POSTs one after another through the real `curl` until `stop`, recording
/// each request's status (nil when curl got no HTTP answer: the gateway was
/// down or died mid-request). Sequential, so for one topic the order of
/// acceptance is the order sent.
final class HTTPStream: Sendable {
    struct Record: Sendable {
        var sequence: Int
        var payload: String
        var status: Int?
    }

    let answered = Atomic<Int>(0)
    private let stopRequested = Atomic<Bool>(false)

    init() {}

    func stop() { stopRequested.store(true, ordering: .relaxed) }

    /// - Parameters:
    ///   - url: the URL for request `n`.
    ///   - payload: the (unique) body of request `n`.
    ///   - pause: wait between requests (and after a failure, so a gateway
    ///     that is down is not hammered by curl processes).
    ///   - limit: hard bound on the number of requests.
    func run(
        url: @Sendable (Int) -> String,
        payload: @Sendable (Int) -> String,
        pause: Duration = .milliseconds(10),
        limit: Int = 100_000,
        requestTimeout: Int = 5,
        headers: [String: String] = [:],
        tls: HTTPTLS? = nil
    ) async -> [Record] {
        var records: [Record] = []
        var sequence = 0
        while !stopRequested.load(ordering: .relaxed), sequence < limit, !Task.isCancelled {
            let body = payload(sequence)
            var status: Int?
            if let response = try? await HTTP.request("POST", url(sequence), body: Array(body.utf8), headers: headers, timeout: requestTimeout, tls: tls) {
                status = response.status
                answered.add(1, ordering: .relaxed)
            }
            records.append(Record(sequence: sequence, payload: body, status: status))
            sequence += 1
            try? await Task.sleep(for: status == nil ? max(pause, .milliseconds(50)) : pause)
        }
        return records
    }
}
