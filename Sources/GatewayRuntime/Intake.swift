import Foundation
import GatewayCore
import GatewayStore
import Logging

/// The ingress pipeline: routes a request with the current mapping table,
/// builds the message to publish, and hands it to the outbox writer.
public final class Intake: IngressPipeline {
    /// Seconds a device is told to wait when the outbox is full.
    static let retryAfterFull = 5

    private let router: Router
    private let writer: OutboxWriter
    private let logger: Logger

    public init(router: Router, writer: OutboxWriter, logger: Logger) {
        self.router = router
        self.writer = writer
        self.logger = logger
    }

    public func accept(
        _ request: IngressRequest,
        completion: @escaping @Sendable (Result<Void, IngressRejection>) -> Void
    ) throws(IngressRejection) {
        let route: Route
        switch router.route(request) {
        case .success(let found): route = found
        case .failure(let rejection): throw rejection
        }
        let payload: [UInt8]
        switch route.rule.payload {
        case .raw: payload = request.payload
        case .envelope: payload = Envelope.encode(request: request, route: route, gateway: router.gatewayName)
        }
        let message = OutboundMessage(
            topic: route.topic, qos: route.rule.qos, retain: route.rule.retain,
            payload: payload, receivedAt: request.receivedAt, mapping: route.rule.name
        )
        do {
            try writer.submit(message) { [logger] result in
                switch result {
                case .success:
                    completion(.success(()))
                case .failure(.diskFull):
                    completion(.failure(.unavailable(retryAfterSeconds: Self.retryAfterFull, reason: "gateway storage is full")))
                case .failure(let error):
                    logger.error("message not stored", metadata: ["mapping": "\(route.rule.name)", "error": "\(error)"])
                    completion(.failure(.internalError(reason: "message could not be stored")))
                }
            }
        } catch {
            switch error {
            case .full:
                throw .unavailable(retryAfterSeconds: Self.retryAfterFull, reason: "gateway queue is full; retry later")
            case .stopping:
                throw .unavailable(retryAfterSeconds: Self.retryAfterFull, reason: "gateway is shutting down; retry later")
            }
        }
    }
}
