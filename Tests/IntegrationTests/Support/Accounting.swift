import Foundation

/// Every acknowledged message accounted for as delivered, duplicated or
/// lost, by its unique payload text. Lost must be zero.
struct Accounting: CustomStringConvertible {
    var acknowledged: Int
    var delivered: Int
    var duplicates: Int
    var lost: [String]
    /// Delivered although never acknowledged (a request whose answer was
    /// lost when the gateway died): allowed, reported for information.
    var unacknowledgedDelivered: Int

    init(acknowledged: Set<String>, received: [ReceivedMessage]) {
        var counts: [String: Int] = [:]
        for message in received { counts[message.text, default: 0] += 1 }
        self.acknowledged = acknowledged.count
        delivered = acknowledged.filter { counts[$0] != nil }.count
        duplicates = counts.values.reduce(0) { $0 + max(0, $1 - 1) }
        lost = acknowledged.filter { counts[$0] == nil }.sorted()
        unacknowledgedDelivered = counts.keys.filter { !acknowledged.contains($0) }.count
    }

    var description: String {
        "acknowledged \(acknowledged), delivered \(delivered), duplicates \(duplicates), "
            + "lost \(lost.count)\(lost.isEmpty ? "" : " e.g. \(lost.prefix(10))"), "
            + "delivered without acknowledgement \(unacknowledgedDelivered)"
    }
}

extension Subscriber {
    /// Waits until every payload in `payloads` has been received at least once.
    @discardableResult
    func waitForAll(_ payloads: Set<String>, timeout: Duration = .seconds(90)) async throws -> [ReceivedMessage] {
        do {
            return try await waitUntil(timeout: timeout, "all \(payloads.count) acknowledged payloads") { received in
                payloads.isSubset(of: Set(received.map(\.text)))
            }
        } catch {
            throw HarnessError("\(Accounting(acknowledged: payloads, received: messages()))\n\(error)")
        }
    }
}
