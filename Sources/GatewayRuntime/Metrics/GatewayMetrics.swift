import Foundation
import GatewayCore
import Prometheus

/// Every metric the gateway exports, created once on one registry. The names
/// are the operators' interface (dashboards, alerts): do not rename.
struct GatewayMetrics: Sendable {
    /// Outcomes `requestAnswered` reports.
    static let outcomes = RequestOutcome.allCases.map(\.rawValue)
    static let qosValues = ["0", "1"]

    let requests: LabeledCounters
    /// `requests`' series by protocol and outcome, held directly: every
    /// answer counts, and looking one up by its label strings hashed two
    /// strings and an array per request.
    let requestSeries: [IngressProtocol: [RequestOutcome: Counter]]
    let accepted: LabeledCounters
    let delivered: LabeledCounters
    let resent: Counter
    let expired: LabeledCounters
    let shed: Counter
    let refused: LabeledCounters
    let brokerRefusals: LabeledCounters
    let dropped: LabeledCounters
    let upstreamConnected: Gauge
    let reconnects: Counter
    let commitBatchSize: ValueHistogram
    let commitDuration: ValueHistogram
    let deliveryLatency: ValueHistogram
    let devicesEnabled: Gauge
    let devicesDisabled: Gauge
    let registryReloads: LabeledCounters
    let acceptedByMapping: MappingCounters
    /// `accepted`'s QoS 0 and 1 series, held directly: they count every
    /// message, and a lookup by label values would build an array each time.
    private let acceptedQoS0: Counter
    private let acceptedQoS1: Counter
    /// `iotgw_upstream_inflight`, indexed by connection.
    let inFlight: [Gauge]
    let connectFailures: LabeledCounters
    private let buildInfo: Gauge
    private let certificateExpiry: Gauge?
    private let outboxQoS0: OutboxGauges
    private let outboxQoS1: OutboxGauges

    /// `connections`: `upstream.connections`; `mappings`: the configured
    /// mappings, whose series are created at once.
    init(
        _ registry: PrometheusCollectorRegistry, connections: Int = 1, mappings: [(mapping: String, qos: QoS)] = [],
        certificateExpiry expiry: Date? = nil
    ) {
        func name(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        let qos = (name: "qos", values: Self.qosValues)
        // QoS 2 exists only under the generic profile: its series appear when used.
        let qos2: [String: Set<String>] = ["qos": ["2"]]

        let requests = LabeledCounters(registry, name(
            "iotgw_requests_total", "Device requests answered, by protocol and outcome."
        ), labels: [("protocol", IngressProtocol.allCases.map(\.rawValue)), ("outcome", Self.outcomes)])
        self.requests = requests
        requestSeries = Dictionary(uniqueKeysWithValues: IngressProtocol.allCases.map { proto in
            (proto, Dictionary(uniqueKeysWithValues: RequestOutcome.allCases.map { ($0, requests.series([proto.rawValue, $0.rawValue])) }))
        })
        let acceptedName = name(
            "iotgw_messages_accepted_total", "Messages that entered the outbox (committed for QoS 1, queued for QoS 0)."
        )
        accepted = LabeledCounters(registry, acceptedName, labels: [qos], onDemand: qos2)
        // The registry hands back the series `accepted` just made.
        acceptedQoS0 = registry.makeCounter(descriptor: acceptedName, labels: [("qos", "0")])
        acceptedQoS1 = registry.makeCounter(descriptor: acceptedName, labels: [("qos", "1")])
        delivered = LabeledCounters(registry, name(
            "iotgw_messages_delivered_total", "Messages the broker took (PUBACK for QoS 1, written for QoS 0)."
        ), labels: [qos], onDemand: qos2)
        resent = registry.makeCounter(descriptor: name(
            "iotgw_messages_resent_total", "QoS 1 messages sent again after a reconnect."
        ))
        expired = LabeledCounters(registry, name(
            "iotgw_messages_expired_total", "Messages dropped because their mapping's expiry passed."
        ), labels: [qos], onDemand: qos2)
        shed = registry.makeCounter(descriptor: name(
            "iotgw_messages_shed_total", "Queued QoS 0 messages dropped to make room."
        ))
        refused = LabeledCounters(registry, name(
            "iotgw_messages_refused_total", "New messages refused: outbox full, disk full, or the gateway stopping."
        ), labels: [("reason", ["full", "disk_full", "stopping"])])
        // MQTT 5 PUBACK error codes a broker may send; others count as "other".
        brokerRefusals = LabeledCounters(registry, name(
            "iotgw_broker_refusals_total", "Publishes the broker refused, by MQTT 5 reason code (0x97: quota exceeded)."
        ), labels: [("reason_code", ["0x80", "0x83", "0x87", "0x89", "0x90", "0x91", "0x97", "0x99"])])
        dropped = LabeledCounters(registry, name(
            "iotgw_messages_dropped_total",
            "Messages dropped: QoS 0 while offline, or refused by the MQTT library as invalid."
        ), labels: [("reason", ["offline", "rejected"]), qos], onDemand: qos2)
        upstreamConnected = registry.makeGauge(descriptor: name(
            "iotgw_upstream_connected", "Upstream MQTT connections that are up (1 or 0 with one connection)."
        ))
        reconnects = registry.makeCounter(descriptor: name(
            "iotgw_upstream_reconnects_total", "Successful MQTT connections after the first one."
        ))
        commitBatchSize = registry.makeValueHistogram(descriptor: name(
            "iotgw_commit_batch_size", "Messages stored per outbox group commit."
        ), buckets: MetricBuckets.commitBatchSize)
        commitDuration = registry.makeValueHistogram(descriptor: name(
            "iotgw_commit_duration_seconds", "Duration of outbox commit transactions, including fsync."
        ), buckets: MetricBuckets.commitDuration)
        deliveryLatency = registry.makeValueHistogram(descriptor: name(
            "iotgw_delivery_latency_seconds", "Seconds from ingress to the broker's PUBACK (QoS 1)."
        ), buckets: MetricBuckets.deliveryLatency)

        let devices = name("iotgw_devices", "Devices in the registry now in use, by state.")
        devicesEnabled = registry.makeGauge(descriptor: devices, labels: [("state", "enabled")])
        devicesDisabled = registry.makeGauge(descriptor: devices, labels: [("state", "disabled")])
        registryReloads = LabeledCounters(registry, name(
            "iotgw_registry_reloads_total", "Reloads of the device registry after its files changed or SIGHUP: ok, or failed (the previous registry stays)."
        ), labels: [("result", ["ok", "failed"])])

        acceptedByMapping = MappingCounters(
            registry, name: "iotgw_messages_accepted_by_mapping_total",
            help: "Messages that entered the outbox, by the mapping that produced them and its QoS.",
            seed: mappings
        )
        let connectionLabels = (0..<max(1, connections)).map(String.init)
        let inFlightName = name(
            "iotgw_upstream_inflight", "Messages handed to the MQTT client and not yet acknowledged, by upstream connection."
        )
        inFlight = connectionLabels.map { registry.makeGauge(descriptor: inFlightName, labels: [("connection", $0)]) }
        connectFailures = LabeledCounters(registry, name(
            "iotgw_upstream_connect_failures_total",
            "Failed attempts to connect upstream, by connection and reason: refused (CONNACK), timeout, tls, dns, network, other."
        ), labels: [("connection", connectionLabels), ("reason", UpstreamConnectFailure.allCases.map(\.rawValue))])
        buildInfo = registry.makeGauge(descriptor: name(
            "iotgw_build_info", "Always 1; the labels say which version and commit is running."
        ), labels: [("version", GatewayVersion.string), ("commit", GatewayVersion.commit)])
        buildInfo.set(to: 1)
        // Read once at start: libmosquitto loads the certificate then too.
        certificateExpiry = expiry.map { date in
            let gauge = registry.makeGauge(descriptor: name(
                "iotgw_upstream_certificate_expiry_timestamp_seconds",
                "When the upstream client certificate (upstream.tls.cert_file) expires, in seconds since 1970 (UTC)."
            ))
            gauge.set(to: date.timeIntervalSince1970.rounded())
            return gauge
        }

        let messages = name("iotgw_outbox_messages", "Messages queued in the outbox.")
        let bytes = name("iotgw_outbox_bytes", "Payload bytes queued in the outbox.")
        let age = name("iotgw_outbox_oldest_age_seconds", "Age of the oldest queued message; 0 when empty.")
        func gauges(_ qos: String) -> OutboxGauges {
            OutboxGauges(
                messages: registry.makeGauge(descriptor: messages, labels: [("qos", qos)]),
                bytes: registry.makeGauge(descriptor: bytes, labels: [("qos", qos)]),
                oldestAge: registry.makeGauge(descriptor: age, labels: [("qos", qos)])
            )
        }
        outboxQoS0 = gauges("0")
        outboxQoS1 = gauges("1")
    }

    /// One more accepted message of `qos`.
    func countAccepted(_ qos: QoS) {
        switch qos {
        case .atMostOnce: acceptedQoS0.increment()
        case .atLeastOnce: acceptedQoS1.increment()
        case .exactlyOnce: accepted.increment([qos.metricLabel])
        }
    }

    func outbox(_ qos: QoS) -> OutboxGauges {
        qos == .atMostOnce ? outboxQoS0 : outboxQoS1
    }
}

/// The outbox gauges of one QoS, set from a snapshot at each scrape (the
/// writer's counts are read then, not pushed on every change).
struct OutboxGauges: Sendable {
    let messages: Gauge
    let bytes: Gauge
    let oldestAge: Gauge

    func set(_ level: OutboxSnapshot.Level) {
        messages.set(to: Double(level.messages))
        bytes.set(to: Double(level.bytes))
        oldestAge.set(to: level.oldestAge)
    }
}
