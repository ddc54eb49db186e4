import GatewayCore
import Prometheus
import Synchronization

/// One counter per mapping and QoS, found without a lock or an allocation:
/// it is bumped for every accepted message, on the ingress and writer threads.
///
/// A fixed table of slots, each filled once (an `AtomicLazyReference`) and
/// never emptied, probed from the hash of the mapping name and QoS. A
/// lookup is one hash, one atomic load and one string comparison. A slot is
/// filled the first time its pair is seen, so a mapping added by a reload
/// gets its series then; the names are bounded by the configuration, and
/// past `capacity` pairs the rest count under the mapping `other`.
final class MappingCounters: Sendable {
    static let capacity = 512
    static let other = "other"

    private final class Entry: Sendable {
        let mapping: String
        let qos: QoS
        let counter: Counter

        init(mapping: String, qos: QoS, counter: Counter) {
            self.mapping = mapping
            self.qos = qos
            self.counter = counter
        }
    }

    private final class Slot: Sendable {
        let entry = AtomicLazyReference<Entry>()
    }

    private let slots: [Slot]
    private let registry: PrometheusCollectorRegistry
    /// Kept as text: `MetricNameDescriptor` is not `Sendable`.
    private let name: String
    private let help: String

    /// `seed`: the mappings of the configuration, so their series read 0
    /// from the start.
    init(_ registry: PrometheusCollectorRegistry, name: String, help: String, seed: [(mapping: String, qos: QoS)]) {
        self.registry = registry
        self.name = name
        self.help = help
        self.slots = (0..<Self.capacity).map { _ in Slot() }
        for (mapping, qos) in seed { _ = counter(mapping: mapping, qos: qos) }
    }

    func increment(mapping: String, qos: QoS) {
        counter(mapping: mapping, qos: qos).increment()
    }

    func counter(mapping: String, qos: QoS) -> Counter {
        var hasher = Hasher()
        hasher.combine(mapping)
        hasher.combine(qos)
        var index = Int(UInt(bitPattern: hasher.finalize()) % UInt(Self.capacity))
        for _ in 0..<Self.capacity {
            let slot = slots[index]
            let entry = slot.entry.load() ?? slot.entry.storeIfNil(Entry(mapping: mapping, qos: qos, counter: make(mapping, qos)))
            // Another thread may have filled the slot for another pair first.
            if entry.qos == qos && entry.mapping == mapping { return entry.counter }
            index = (index + 1) % Self.capacity
        }
        return make(Self.other, qos)
    }

    /// The registry hands back the same counter for the same labels, so a
    /// pair made twice in a race is still one series.
    private func make(_ mapping: String, _ qos: QoS) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help),
            labels: [("mapping", mapping), ("qos", qos.metricLabel)]
        )
    }
}
