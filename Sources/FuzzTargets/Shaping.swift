import Foundation
import GatewayCore

/// What the intake does with a routed request before the outbox, as far as
/// it is pure: the envelope of an `payload: envelope` mapping (which must
/// be JSON), and the checks on the rendered topic.
enum Shaping {
    static func check(_ request: IngressRequest, _ route: Route, _ fixture: FuzzFixture) {
        precondition(!route.topic.isEmpty, "empty topic")
        precondition(fixture.router.limits.problem(withTopic: route.topic) == nil, "a routed topic over the limits")
        guard route.rule.shadow == nil, route.rule.commands == nil, route.rule.payload == .envelope else { return }
        let envelope = Envelope.encode(request: request, route: route, gateway: fixture.router.gatewayName)
        precondition(
            (try? JSONSerialization.jsonObject(with: Data(envelope))) != nil,
            "the envelope is not JSON"
        )
    }
}
