import CBORCodec
import Foundation
import GatewayCore

/// What the intake does with a routed request before the outbox, as far as
/// it is pure: the payload shaper (media type check, JSON, CBOR through
/// libcbor, SenML, batches, envelopes), then each message's topic. Command
/// and shadow mappings go elsewhere (the downlink, the shadow client).
enum Shaping {
    static let shaper = PayloadShaper(cbor: CBORDecoder(), gateway: FuzzFixture.shared.router.gatewayName)

    /// The messages the request would become, or why it is refused.
    static func messages(_ request: IngressRequest, _ route: Route, _ fixture: FuzzFixture) -> Result<[ShapedMessage], IngressRejection> {
        precondition(!route.topic.isEmpty, "empty topic")
        precondition(fixture.router.limits.problem(withTopic: route.topic) == nil, "a routed topic over the limits")
        guard route.rule.shadow == nil, route.rule.commands == nil else { return .success([]) }
        let shaped: [ShapedMessage]
        do {
            shaped = try shaper.shape(request, route: route)
        } catch {
            return .failure(error)
        }
        precondition(!shaped.isEmpty, "a request shaped into no message")
        precondition(route.rule.batch || shaped.count == 1, "one request, \(shaped.count) messages, without batch")
        for message in shaped {
            if route.rule.payload != .raw {
                // Envelopes, JSON and SenML are published as JSON.
                // Foundation's parser alone is too lenient (it takes "0\0"), so no raw NUL either.
                precondition(
                    !message.payload.contains(0)
                        && (try? JSONSerialization.jsonObject(with: Data(message.payload), options: [.fragmentsAllowed])) != nil,
                    "a \(route.rule.payload) message that is not JSON: \(String(decoding: message.payload.prefix(300), as: UTF8.self).debugDescription)"
                )
            }
            if let name = message.recordName, route.topicPerRecord {
                if case .success(let topic) = route.topic(forRecord: name) {
                    precondition(fixture.router.limits.problem(withTopic: topic) == nil, "a record's topic over the limits")
                }
            }
        }
        return .success(shaped)
    }
}
