import Foundation
import GatewayCore
import Testing

/// Issue 4, proof 2: with `publish_rate: 50` a burst far faster than that
/// reaches the broker at no more than 50 publishes in any second per
/// connection (AWS IoT Core silently drops what exceeds its quota), all of it
/// arrives, each device's readings in order; with `connections: 3` the
/// aggregate is about three times as fast.
///
/// The bounds are behavioural: per connection never above the quota in any
/// sliding one-second window of the subscriber's receive times (the gateway
/// keeps it over 1.05 s windows at send time, so up to 50 ms of jitter on the
/// way cannot push a window over). How fast the pool is in aggregate depends
/// on the machine (a loaded one ingests the burst more slowly), so it is
/// printed, not asserted; what is asserted is that the connections publish
/// side by side: every connection's busy period overlaps every other's.
@Suite("Publish rate limit per connection")
struct RateLimitTests {
    static let quota = 50

    static func settings(connections: Int) -> GatewaySettings {
        var settings = GatewaySettings()
        settings.profile = "aws-iot-core"
        settings.upstreamExtra = ["publish_rate: \(quota)"] + (connections > 1 ? ["connections: \(connections)"] : [])
        // Ingestion far faster than the quota: the outbox takes the burst.
        settings.sync = "normal"
        settings.mappings = """
            - name: rate
              resource: /rate/{device}
              auth: anonymous
              topic: dt/rate/{device}
              qos: 1
              shard_key: "{device}"

            """
        return settings
    }

    /// `count` device names, `perShard` of them on each of the `connections`
    /// connections, by the gateway's own stable hash of the shard key
    /// (`shard_key: "{device}"` renders to the device name).
    static func devices(perShard: Int, connections: Int) -> [String] {
        var chosen: [[String]] = Array(repeating: [], count: connections)
        var index = 0
        while chosen.contains(where: { $0.count < perShard }) {
            let name = "dev-\(index)"
            let shard = ShardHash.shard(ShardHash.of(name), of: connections)
            if chosen[shard].count < perShard { chosen[shard].append(name) }
            index += 1
        }
        return chosen.flatMap { $0 }
    }

    static func shard(ofTopic topic: String, connections: Int) -> Int {
        ShardHash.shard(ShardHash.of(String(topic.dropFirst("dt/rate/".count))), of: connections)
    }

    /// Sends `total` readings round-robin over `devices` as one fast HTTP
    /// burst (sequential: per device, acceptance order is send order); the
    /// payload is `device:sequence`.
    static func burst(_ gateway: GatewayProcess, devices: [String], total: Int) async throws -> (sent: [String], seconds: Double) {
        let requests = (0..<total).map { n -> HTTPBurst.Request in
            let device = devices[n % devices.count]
            return HTTPBurst.Request(url: gateway.httpURL("/rate/\(device)"), body: "\(device):\(n / devices.count)")
        }
        let clock = ContinuousClock()
        let started = clock.now
        let statuses = try await HTTPBurst.post(requests)
        let elapsed = clock.now - started
        let refused = statuses.enumerated().filter { $0.element != 202 }
        #expect(refused.isEmpty, "not accepted: \(refused.prefix(10))")
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return (requests.map(\.body), seconds)
    }

    /// Per device, the sequence numbers in arrival order must be 0, 1, 2, …
    static func expectPerDeviceOrder(_ received: [TimedMessage], devices: [String], perDevice: [String: Int]) {
        var sequences: [String: [Int]] = [:]
        for message in received {
            let parts = message.text.split(separator: ":")
            guard parts.count == 2, let sequence = Int(parts[1]) else {
                Issue.record("unexpected payload \(message)")
                continue
            }
            #expect(message.topic == "dt/rate/\(parts[0])", "payload on the wrong topic: \(message)")
            sequences[String(parts[0]), default: []].append(sequence)
        }
        for device in devices {
            let got = sequences[device] ?? []
            #expect(got == Array(0..<(perDevice[device] ?? 0)), "\(device): arrival order \(got)")
        }
    }

    struct Figures: CustomStringConvertible {
        var count: Int
        var span: Double
        var max1s: Int
        var max105: Int
        var shortest51: Double?
        var rate: Double { span > 0 ? Double(count - 1) / span : 0 }
        init(_ times: [Double], quota: Int) {
            let sorted = times.sorted()
            count = sorted.count
            span = (sorted.last ?? 0) - (sorted.first ?? 0)
            max1s = RateWindows.maxInWindow(sorted, width: 1.0)
            max105 = RateWindows.maxInWindow(sorted, width: 1.05)
            shortest51 = RateWindows.shortestSpan(sorted, covering: quota + 1)
        }
        var description: String {
            String(format: "%d msgs over %.2f s = %.1f/s; max in any 1 s: %d, in any 1.05 s: %d; shortest span of 51 consecutive: %@",
                   count, span, rate, max1s, max105, shortest51.map { String(format: "%.3f s", $0) } ?? "n/a")
        }
    }

    @Test("one connection, publish_rate 50: a burst of 500 never exceeds 50 in any second at the broker; all arrive in order")
    func oneConnection() async throws {
        let devices = Self.devices(perShard: 10, connections: 1)
        let total = 500
        try await AWSLikeEndToEnd.run(
            "rate-1", settings: Self.settings(connections: 1),
            gatewayWrites: ["dt/rate/+"], subscriberReads: ["dt/#"], filters: ["dt/rate/#"]
        ) { env in
            let (sent, ingest) = try await Self.burst(env.gateway, devices: devices, total: total)
            // 500 at 50 per 1.05 s take about 9.5 s; allow plenty.
            let received = try await env.subscriber.waitForTimed(count: total, timeout: .seconds(120))
            let settled = try await env.subscriber.settleTimed(for: .seconds(1))
            #expect(settled.count == total, "received \(settled.count), want exactly \(total)")
            // One connection, sequential ingestion: arrival order is send order.
            #expect(settled.map(\.text) == sent, "arrival order differs from send order")
            Self.expectPerDeviceOrder(settled, devices: devices, perDevice: Dictionary(uniqueKeysWithValues: devices.map { ($0, total / devices.count) }))

            let figures = Figures(received.map(\.time), quota: Self.quota)
            print("rate, 1 connection: burst of \(total) accepted in \(String(format: "%.2f", ingest)) s; at the subscriber: \(figures)")
            #expect(figures.max1s <= Self.quota, "more than \(Self.quota) publishes in a 1 s window: \(figures)")
        }
    }

    @Test("connections 3, publish_rate 50: per connection never above 50 in any second, all three publishing side by side, per-device order kept")
    func threeConnections() async throws {
        let connections = 3
        // 10 devices on each connection (chosen by the gateway's hash), 20
        // readings each: 200 per connection.
        let devices = Self.devices(perShard: 10, connections: connections)
        let total = 600
        try await AWSLikeEndToEnd.run(
            "rate-3", settings: Self.settings(connections: connections),
            gatewayWrites: ["dt/rate/+"], subscriberReads: ["dt/#"], filters: ["dt/rate/#"], logAll: true
        ) { env in
            // All three client IDs connected (gw-test-1 … -3) before the burst.
            try await eventually(timeout: .seconds(30), "gw-test-1…3 connected to the broker") {
                let log = env.broker.log
                return (1...connections).allSatisfy { log.contains("as gw-test-\($0) ") } ? true : nil
            }
            #expect(!env.broker.log.contains("as gw-test "), "with connections: 3 the bare client ID must not be used")

            let (_, ingest) = try await Self.burst(env.gateway, devices: devices, total: total)
            let received = try await env.subscriber.waitForTimed(count: total, timeout: .seconds(120))
            let settled = try await env.subscriber.settleTimed(for: .seconds(1))
            #expect(settled.count == total, "received \(settled.count), want exactly \(total)")
            Self.expectPerDeviceOrder(settled, devices: devices, perDevice: Dictionary(uniqueKeysWithValues: devices.map { ($0, total / devices.count) }))

            let aggregate = Figures(received.map(\.time), quota: Self.quota)
            print("rate, \(connections) connections: burst of \(total) accepted in \(String(format: "%.2f", ingest)) s; aggregate: \(aggregate)")
            var busy: [ClosedRange<Double>] = []
            for shard in 0..<connections {
                let times = received.filter { Self.shard(ofTopic: $0.topic, connections: connections) == shard }.map(\.time)
                let figures = Figures(times, quota: Self.quota)
                print("rate, connection \(shard + 1) (gw-test-\(shard + 1)): \(figures)")
                #expect(times.count == total / connections, "connection \(shard + 1) carried \(times.count)")
                #expect(figures.max1s <= Self.quota, "connection \(shard + 1): more than \(Self.quota) in a 1 s window: \(figures)")
                if let first = times.min(), let last = times.max() { busy.append(first...last) }
            }
            // Side by side, not one after another (each needs ≥ 4 s for its
            // 200 at 50/s, and the burst feeds all three from its start).
            for a in busy.indices {
                for b in busy.indices where a < b {
                    #expect(busy[a].overlaps(busy[b]), "connections \(a + 1) and \(b + 1) did not publish at the same time: \(busy)")
                }
            }

            // The attribution above is by the gateway's hash; the broker's own
            // log (log_type all) says which client ID published each message:
            // every device on exactly one connection, the one its hash names.
            var publishers: [String: Set<String>] = [:]
            for match in env.broker.log.matches(of: /Received PUBLISH from (gw-test-\d+) \(.*?'dt\/rate\/(dev-\d+)'/) {
                publishers[String(match.output.2), default: []].insert(String(match.output.1))
            }
            #expect(publishers.count == devices.count, "the broker log names \(publishers.count) devices, want \(devices.count)")
            for device in devices {
                let want = "gw-test-\(ShardHash.shard(ShardHash.of(device), of: connections) + 1)"
                #expect(publishers[device] == [want], "\(device): published by \(publishers[device] ?? []), want \(want)")
            }
        }
    }
}

/// Counting over receive times.
enum RateWindows {
    /// The most times (sorted ascending) inside any half-open window
    /// `[t, t + width)`.
    static func maxInWindow(_ times: [Double], width: Double) -> Int {
        var best = 0, start = 0
        for end in times.indices {
            while times[end] - times[start] >= width { start += 1 }
            best = max(best, end - start + 1)
        }
        return best
    }

    /// The shortest span covering `count` consecutive times; nil if there are
    /// fewer. With `count = quota + 1`, a value at or above the window width
    /// means the quota was kept, and says by how much.
    static func shortestSpan(_ times: [Double], covering count: Int) -> Double? {
        guard count >= 1, times.count >= count else { return nil }
        return (0...(times.count - count)).map { times[$0 + count - 1] - times[$0] }.min()
    }
}
