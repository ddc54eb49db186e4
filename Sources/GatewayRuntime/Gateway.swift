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
    let config: GatewayConfig
    let logger: Logger
    private let metrics: PrometheusObserver
    /// The parts while the gateway is ready; nil while it starts and stops.
    let running = Guarded<Parts?>(nil)
    /// The configuration a reload would read, and the mapping table in use.
    let reloads: Guarded<ReloadState>
    let supervisor: ServiceSupervisor

    /// Seconds to wait for PUBACKs of messages in flight when stopping.
    static let drainTimeout: TimeInterval = 3

    public init(config: GatewayConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        self.metrics = PrometheusObserver(
            connections: config.upstream.connections, mappings: config.mappings.map { ($0.name, $0.qos) },
            certificateExpiry: CertificateExpiry.notAfter(path: config.upstream.tls.certFile)
        )
        reloads = Guarded(ReloadState(mappings: config.mappings))
        let running = self.running
        supervisor = ServiceSupervisor(logger: logger) {
            guard let parts = running.withLock({ $0 }) else { return "starting" }
            return Self.status(parts)
        }
    }

    public func run() async throws {
        logger.info("gateway starting", metadata: ["gateway.version": "\(GatewayVersion.string)", "gateway.commit": "\(GatewayVersion.commit)"])
        // The admin listener comes first and goes last, so /readyz says 503
        // while the gateway starts and stops rather than refusing connections.
        let running = self.running
        let admin = try await Blocking.run("admin-start") { [config, logger, metrics] () throws(GatewayError) -> AdminServer? in
            try Self.startAdmin(config: config, logger: logger, metrics: metrics, running: running)
        }
        let parts: Parts
        do {
            parts = try await Blocking.run("gateway-start") { [config, logger, metrics] () throws(GatewayError) -> Parts in
                try Parts.start(config: config, logger: logger, observer: metrics)
            }
        } catch {
            admin?.stop()
            throw error
        }
        running.withLock { $0 = parts }
        logger.info("gateway ready", metadata: [
            "gateway.name": "\(config.gateway.name)",
            "gateway.mappings": "\(config.mappings.count)",
            "gateway.devices": "\(parts.security.registry.count)",
            "outbox.depth": "\(parts.outbox.durableCounts.messages)",
        ])
        supervisor.ready()
        try? await gracefulShutdown()
        logger.info("gateway stopping")
        supervisor.stopping()
        running.withLock { $0 = nil }
        await Blocking.run("gateway-stop") {
            parts.stop()
            admin?.stop()
        }
        logger.info("gateway stopped")
    }

    private static func startAdmin(
        config: GatewayConfig, logger: Logger, metrics: PrometheusObserver, running: Guarded<Parts?>
    ) throws(GatewayError) -> AdminServer? {
        guard !config.admin.listen.isEmpty else { return nil }
        let routes = AdminRoutes(
            observer: metrics,
            snapshot: {
                running.withLock { $0 }?.outbox.snapshot()
                    ?? OutboxSnapshot(qos0: .init(messages: 0, bytes: 0, oldestAge: 0), qos1: .init(messages: 0, bytes: 0, oldestAge: 0))
            },
            readiness: {
                guard let parts = running.withLock({ $0 }) else {
                    return Readiness(listening: false, outboxWritable: false, upstreamConnected: false)
                }
                return Readiness(listening: true, outboxWritable: parts.outbox.isWritable, upstreamConnected: parts.outbox.upstreamConnected)
            }
        )
        let server = AdminServer(listen: config.admin.listen, logger: logger) { routes.respond($0) }
        do {
            try server.start()
        } catch {
            throw .admin(error.description)
        }
        logger.info("admin listening", metadata: ["admin.listen": "\(config.admin.listen.map(\.description).joined(separator: ","))"])
        return server
    }
}

/// The running parts, owned together.
struct Parts: Sendable {
    let state: StateDirectory
    let outbox: Outbox
    let tracker: DeliveryTracker
    /// One per upstream connection.
    let forwarders: [Forwarder]
    let downlink: Downlink
    let coap: CoAPServer?
    let http: HTTPServer?
    let security: DeviceSecurity
    let intake: Intake
    /// Present when a device registry is configured.
    let registryWatcher: RegistryWatcher?
    let logger: Logger

    static func start(config: GatewayConfig, logger: Logger, observer: GatewayObserver) throws(GatewayError) -> Parts {
        let upstream = config.upstream
        let state: StateDirectory
        let outbox: Outbox
        do {
            state = try StateDirectory(path: config.gateway.stateDirectory)
            let (settings, budget, reserve) = Self.fitToDisk(config.outbox, state: state, logger: logger)
            let store = try OutboxStore(
                path: state.databasePath, sync: config.outbox.sync, shards: upstream.connections, walPages: budget.walPages
            )
            if store.foundTornWAL {
                logger.warning("outbox WAL ended in a partial write (a power loss or a crash mid-commit); the unfinished commit was dropped", metadata: [
                    "outbox.path": "\(store.path)",
                    "outbox.sync": "\(config.outbox.sync.rawValue)",
                ])
            }
            outbox = try Outbox(store: store, settings: settings, logger: logger, observer: observer, reserve: reserve)
        } catch {
            switch error {
            case .damaged:
                throw .unusableState("\(error.description); iot-gateway queue recover --config FILE --yes salvages what is readable into a new outbox and keeps the old file aside")
            case .unwritable, .stateDirectory:
                throw .unusableState("\(error.description); the state directory (gateway.state_dir) must be writable by the service user")
            default:
                throw .storage(error.description)
            }
        }

        let tracker = DeliveryTracker()
        var clients: [MosquittoClient] = []
        for lane in outbox.lanes {
            do {
                clients.append(try MosquittoClient(settings: MQTTClientSettings(upstream, connection: lane.index), logger: logger))
            } catch {
                throw .upstream(error.description)
            }
        }
        let commands: CommandStore
        do {
            commands = try CommandStore(path: state.paths.commands)
        } catch {
            throw .unusableState("\(error.description); the state directory (gateway.state_dir) must be writable by the service user")
        }
        // Listening before the connections start, so no SUBACK or answer is missed.
        let downlink = Downlink(
            transports: clients, subscriptionCap: upstream.maxSubscriptions, gatewayName: config.gateway.name,
            store: commands, logger: logger
        )
        downlink.start()
        var forwarders: [Forwarder] = []
        for (lane, client) in zip(outbox.lanes, clients) {
            forwarders.append(Forwarder(
                lane: lane, client: client, window: upstream.maxInflight,
                publishRate: upstream.publishRate, byteRate: upstream.byteRate,
                // Two keep-alive periods: a live broker answers well within one.
                ackTimeout: Double(2 * upstream.keepAlive),
                tracker: tracker, observer: observer, logger: logger
            ))
        }
        outbox.whenNewMessages { [forwarders] in
            for forwarder in forwarders { forwarder.notifyNewData() }
        }

        let router = Router(rules: config.mappings, gatewayName: config.gateway.name, limits: upstream.limits)
        let security = DeviceSecurity(registry: config.registry, limit: config.devices.failureLimit)
        let intake = Intake(router: router, outbox: outbox, tracker: tracker, security: security, downlink: downlink, logger: logger)
        var registryWatcher: RegistryWatcher?
        if config.devices.isConfigured {
            let watcher = RegistryWatcher(settings: config.devices, security: security, observer: observer, logger: logger)
            watcher.start()
            registryWatcher = watcher
        }

        outbox.start()
        for forwarder in forwarders { forwarder.start() }

        var coap: CoAPServer?
        var http: HTTPServer?
        /// Stops what already runs when a later part cannot start.
        func abandon(_ error: GatewayError) -> GatewayError {
            coap?.stop()
            downlink.stop()
            registryWatcher?.stop()
            for forwarder in forwarders { forwarder.stop(drainTimeout: 0) }
            outbox.shutdown()
            return error
        }
        if !config.coap.allListeners.isEmpty {
            let server = CoAPServer(settings: config.coap, pipeline: intake, logger: logger, observer: observer, authority: security)
            do { try server.start() } catch { throw abandon(.coap(error.description)) }
            coap = server
        }
        if !config.http.listen.isEmpty || !(config.http.tls?.listen.isEmpty ?? true) {
            let server = HTTPServer(settings: config.http, pipeline: intake, logger: logger, observer: observer)
            do { try server.start() } catch { throw abandon(.http(error.description)) }
            http = server
        }
        return Parts(
            state: state, outbox: outbox, tracker: tracker, forwarders: forwarders, downlink: downlink, coap: coap, http: http,
            security: security, intake: intake, registryWatcher: registryWatcher, logger: logger
        )
    }

    /// Ingress first (answering what is in progress), then the forwarder
    /// (waiting briefly for PUBACKs), then the writer's final commit.
    func stop() {
        coap?.stopAccepting()
        http?.stopAccepting()
        outbox.stopAccepting()
        // Answer 5.04 / 504 to whoever still waits for a PUBACK: the message
        // stays queued and goes out after the next start.
        tracker.stop()
        downlink.stop()
        coap?.stop()
        http?.stop()
        registryWatcher?.stop()
        // In parallel: each waits for its own PUBACKs.
        DispatchQueue.concurrentPerform(iterations: forwarders.count) { index in
            forwarders[index].stop(drainTimeout: Gateway.drainTimeout)
        }
        outbox.shutdown()
    }
}
