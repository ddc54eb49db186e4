import Foundation
import GatewayCore
import Prometheus
import Synchronization

/// The gateway's metrics, in Prometheus' text format.
///
/// Every metric is created once, in `init`, on a registry this observer is
/// given (never the global `MetricsSystem`, so tests and tools stay
/// isolated). Labels come only from small fixed sets: protocol, outcome,
/// QoS, reason, the upstream connection's index, and the mapping names of
/// the configuration; never a device, path or topic.
///
/// The observer methods are called on the CoAP, HTTP, writer, forwarder and
/// MQTT threads; they only touch swift-prometheus' atomics and short locks.
public final class PrometheusObserver: GatewayObserver {
    public let registry: PrometheusCollectorRegistry
    private let metrics: GatewayMetrics
    /// One history per upstream connection.
    private let upstream = Mutex<[Int: UpstreamHistory]>([:])
    /// Holds `render` together, so a scrape's gauges and text agree even when
    /// two scrapes overlap.
    private let rendering = Mutex(())

    /// `connections`: `upstream.connections`; `mappings`: the configured
    /// mappings (name and QoS), whose per-mapping series start at 0;
    /// `certificateExpiry`: when the upstream client certificate expires.
    public init(
        registry: PrometheusCollectorRegistry = .init(), connections: Int = 1, mappings: [(mapping: String, qos: QoS)] = [],
        certificateExpiry: Date? = nil
    ) {
        self.registry = registry
        self.metrics = GatewayMetrics(registry, connections: connections, mappings: mappings, certificateExpiry: certificateExpiry)
    }

    // MARK: GatewayObserver

    public func requestAnswered(protocol: IngressProtocol, outcome: RequestOutcome) {
        if let series = metrics.requestSeries[`protocol`]?[outcome] {
            series.increment()
        } else {
            metrics.requests.increment([`protocol`.rawValue, outcome.rawValue])
        }
    }

    public func messageAccepted(qos: QoS) {
        metrics.countAccepted(qos)
    }

    /// Called for every accepted message: two atomic increments, one hash
    /// of the mapping name; no lock, no allocation.
    public func messageAccepted(qos: QoS, mapping: String) {
        metrics.countAccepted(qos)
        metrics.acceptedByMapping.increment(mapping: mapping, qos: qos)
    }

    public func upstreamInFlight(_ connection: Int, count: Int) {
        guard metrics.inFlight.indices.contains(connection) else { return }
        metrics.inFlight[connection].set(to: Double(count))
    }

    public func upstreamConnectFailed(_ connection: Int, reason: UpstreamConnectFailure) {
        metrics.connectFailures.increment([String(connection), reason.rawValue])
    }

    /// Every delivery counts; the latency histogram takes only QoS 1, whose
    /// latency ends at the PUBACK (QoS 0 ends at a socket write, which would
    /// only dilute it).
    public func messagesDelivered(qos: QoS, latencies: [Double]) {
        metrics.delivered.increment([qos.metricLabel], by: latencies.count)
        guard qos.isDurable else { return }
        for latency in latencies where latency.isFinite {
            // Ingress times are wall-clock; a clock step may make one negative.
            metrics.deliveryLatency.record(max(0, latency))
        }
    }

    public func messagesResent(count: Int) {
        if count > 0 { metrics.resent.increment(by: Int64(count)) }
    }

    public func messagesExpired(qos: QoS, count: Int) {
        metrics.expired.increment([qos.metricLabel], by: count)
    }

    public func messagesShed(count: Int) {
        if count > 0 { metrics.shed.increment(by: Int64(count)) }
    }

    public func messagesDropped(reason: String, qos: QoS, count: Int) {
        metrics.dropped.increment([reason, qos.metricLabel], by: count)
    }

    public func messageRefused(reason: String) {
        metrics.refused.increment([reason])
    }

    public func brokerRefused(reasonCode: Int) {
        metrics.brokerRefusals.increment(["0x" + String(reasonCode, radix: 16)])
    }

    public func upstreamConnection(_ connection: Int, connected: Bool) {
        let (reconnected, up) = upstream.withLock { histories -> (Bool, Int) in
            let reconnected = histories[connection, default: UpstreamHistory()].record(connected: connected)
            return (reconnected, histories.values.filter(\.isConnected).count)
        }
        metrics.upstreamConnected.set(to: Double(up))
        if reconnected { metrics.reconnects.increment() }
    }

    /// The batch-size histogram counts only commits that stored messages: a
    /// commit of deletions alone says nothing about how ingress batches, and
    /// would pile up in the lowest bucket. The duration histogram counts
    /// every commit.
    public func commitFinished(messages: Int, deletions: Int, seconds: Double) {
        if messages > 0 { metrics.commitBatchSize.record(Double(messages)) }
        if seconds.isFinite { metrics.commitDuration.record(max(0, seconds)) }
    }

    public func registryLoaded(devices: Int, disabled: Int, reload: Bool) {
        metrics.devicesEnabled.set(to: Double(devices - disabled))
        metrics.devicesDisabled.set(to: Double(disabled))
        if reload { metrics.registryReloads.increment(["ok"]) }
    }

    public func registryReloadFailed() {
        metrics.registryReloads.increment(["failed"])
    }

    // MARK: Exposition

    /// Sets the outbox gauges from `snapshot` and returns every metric of the
    /// registry, and the process metrics read now, in the text format
    /// (version 0.0.4), families sorted by name.
    public func render(snapshot: OutboxSnapshot) -> [UInt8] {
        let process = ProcessMetrics.sample()
        return rendering.withLock { _ in
            metrics.outbox(.atMostOnce).set(snapshot.qos0)
            metrics.outbox(.atLeastOnce).set(snapshot.qos1)
            var text = registry.emitToBuffer()
            if let process { text.append(contentsOf: process.text.utf8) }
            return PrometheusText.sorted(text)
        }
    }
}

/// Counts one connection's reconnects: successful connections after its
/// first one. A repeated "connected" without a disconnect in between is one
/// connection.
struct UpstreamHistory: Sendable {
    private var connected = false
    private var everConnected = false

    var isConnected: Bool { connected }

    /// Whether this event is a reconnect.
    mutating func record(connected now: Bool) -> Bool {
        defer { connected = now }
        guard now, !connected else { return false }
        defer { everConnected = true }
        return everConnected
    }
}

extension QoS {
    /// The `qos` label value.
    var metricLabel: String { String(rawValue) }
}
