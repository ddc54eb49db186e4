import Prometheus

/// The counters of one family, one per combination of label values, all
/// created up front so each series reads 0 before its first event (a rate
/// over a series that appears late misses its first increments).
///
/// Label values come from the gateway's own code, so an unknown one is a
/// bug elsewhere; it is counted under `other` (created on first use) rather
/// than lost, and the family still cannot grow past one extra series per
/// combination of the other labels.
struct LabeledCounters: Sendable {
    private let registry: PrometheusCollectorRegistry
    /// The family's name and help, kept as text: `MetricNameDescriptor` is not `Sendable`.
    private let name: String
    private let help: String
    private let counters: [[String]: Counter]
    private let labelNames: [String]
    /// Values that are valid but rare, created on first use instead of up
    /// front (QoS 2 exists only under the `generic` profile).
    private let onDemand: [Set<String>]

    static let other = "other"

    /// `values` lists, per label name, the values to pre-create; `onDemand`
    /// the valid values created only when first used.
    init(
        _ registry: PrometheusCollectorRegistry, _ descriptor: MetricNameDescriptor,
        labels: [(name: String, values: [String])], onDemand: [String: Set<String>] = [:]
    ) {
        self.registry = registry
        self.name = descriptor.name
        self.help = descriptor.helpText ?? ""
        self.labelNames = labels.map(\.name)
        self.onDemand = labels.map { onDemand[$0.name] ?? [] }
        var combinations: [[String]] = [[]]
        for label in labels {
            combinations = combinations.flatMap { prefix in label.values.map { prefix + [$0] } }
        }
        var counters: [[String]: Counter] = [:]
        for values in combinations {
            counters[values] = registry.makeCounter(descriptor: descriptor, labels: Array(zip(labelNames, values)))
        }
        self.counters = counters
    }

    /// Adds `amount` to the series for `values` (in the order of `labels`).
    func increment(_ values: [String], by amount: Int = 1) {
        guard amount > 0 else { return }
        counter(values).increment(by: Int64(amount))
    }

    /// The series for `values`, to hold where one is counted very often.
    func series(_ values: [String]) -> Counter { counter(values) }

    private func counter(_ values: [String]) -> Counter {
        if let counter = counters[values] { return counter }
        // Replace each value that was never pre-created; the registry hands
        // back the same `other` counter on every later call.
        var known = values
        for index in known.indices
        where !onDemand[index].contains(known[index]) && !counters.keys.contains(where: { $0[index] == known[index] }) {
            known[index] = Self.other
        }
        return counters[known]
            ?? registry.makeCounter(
                descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help),
                labels: Array(zip(labelNames, known))
            )
    }
}
