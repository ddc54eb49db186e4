/// Histogram bucket bounds. Each list is fixed for the process's life (a
/// histogram family cannot change its buckets), and short: every bound is a
/// series Prometheus stores.
enum MetricBuckets {
    /// Messages per group commit: powers of two up to 2,048, the most the
    /// outbox writer takes into one transaction, so the top bucket means
    /// "batches are full" and the low ones "the disk keeps up one by one".
    static let commitBatchSize: [Double] = (0...11).map { Double(1 << $0) }

    /// Seconds per commit transaction. An fsync costs about 0.15 ms on a
    /// server SSD (50 µs and 100 µs catch `sync: normal`, which skips it);
    /// SD cards and eMMC on small boards take 10–100 ms and stall up to a
    /// second, which the top buckets show.
    static let commitDuration: [Double] = [
        0.00005, 0.0001, 0.00025, 0.0005,
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
        0.1, 0.25, 0.5, 1,
    ]

    /// Seconds from ingress to PUBACK. A broker on the LAN answers within
    /// milliseconds, AWS IoT Core within tens to hundreds; backlogs after an
    /// outage or throttling take seconds to a minute. Longer waits land in
    /// +Inf; how long an outage lasts shows in the oldest-age gauge instead.
    static let deliveryLatency: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
        0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ]
}
