import Foundation
import GatewayCore
import GatewayStore
import CoAPIngress
import HTTPIngress
import MQTTEgress
import Logging
import ServiceLifecycle

/// The whole gateway as one service: starts the parts in dependency order,
/// waits for the graceful-shutdown signal, and stops them in reverse so that
/// every request already accepted is committed and answered, and what can be
/// delivered in the drain window is.
public final class Gateway: Service {
    private let config: GatewayConfig
    private let logger: Logger

    /// Seconds to wait for PUBACKs of messages in flight when stopping.
    static let drainTimeout: TimeInterval = 3

    public init(config: GatewayConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    public func run() async throws {
        let parts = try await Blocking.run("gateway-start") { [config, logger] () throws(GatewayError) -> Parts in
            try Parts.start(config: config, logger: logger)
        }
        logger.info("gateway ready", metadata: [
            "gateway.name": "\(config.gateway.name)",
            "gateway.mappings": "\(config.mappings.count)",
            "outbox.depth": "\(parts.writer.queued.messages)",
        ])
        try? await gracefulShutdown()
        logger.info("gateway stopping")
        await Blocking.run("gateway-stop") { parts.stop() }
        logger.info("gateway stopped")
    }
}

/// The running parts, owned together.
struct Parts: Sendable {
    let state: StateDirectory
    let writer: OutboxWriter
    let forwarder: Forwarder
    let coap: CoAPServer?
    let http: HTTPServer?
    let logger: Logger

    static func start(config: GatewayConfig, logger: Logger) throws(GatewayError) -> Parts {
        let state: StateDirectory
        let outbox: Outbox
        let writer: OutboxWriter
        let relay = CommitRelay()
        do {
            state = try StateDirectory(path: config.gateway.stateDirectory)
            outbox = try Outbox(path: state.databasePath, sync: config.outbox.sync)
            writer = try OutboxWriter(
                outbox: outbox,
                maxMessages: config.outbox.maxMessages,
                maxBytes: config.outbox.maxBytes,
                logger: logger,
                onCommit: { relay.fire() }
            )
        } catch {
            throw .storage(error.description)
        }

        let client: MosquittoClient
        do {
            client = try MosquittoClient(settings: MQTTClientSettings(config.upstream), logger: logger)
        } catch {
            throw .upstream(error.description)
        }
        let forwarder = Forwarder(
            outbox: outbox, writer: writer, client: client,
            window: config.upstream.maxInflight, logger: logger
        )
        relay.connect { forwarder.notifyNewData() }

        let router = Router(rules: config.mappings, gatewayName: config.gateway.name)
        let intake = Intake(router: router, writer: writer, logger: logger)

        writer.start()
        forwarder.start()

        var coap: CoAPServer?
        var http: HTTPServer?
        do {
            if !config.coap.listen.isEmpty {
                let server = CoAPServer(settings: config.coap, pipeline: intake, logger: logger)
                try server.start()
                coap = server
            }
        } catch {
            forwarder.stop(drainTimeout: 0)
            writer.shutdown()
            throw .coap(error.description)
        }
        do {
            if !config.http.listen.isEmpty {
                let server = HTTPServer(settings: config.http, pipeline: intake, logger: logger)
                try server.start()
                http = server
            }
        } catch {
            coap?.stop()
            forwarder.stop(drainTimeout: 0)
            writer.shutdown()
            throw .http(error.description)
        }
        return Parts(state: state, writer: writer, forwarder: forwarder, coap: coap, http: http, logger: logger)
    }

    /// Ingress first (answering what is in progress), then the forwarder
    /// (waiting briefly for PUBACKs), then the writer's final commit.
    func stop() {
        coap?.stopAccepting()
        http?.stopAccepting()
        coap?.stop()
        http?.stop()
        forwarder.stop(drainTimeout: Gateway.drainTimeout)
        writer.shutdown()
    }
}
