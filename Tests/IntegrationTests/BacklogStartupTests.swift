import Foundation
import GatewayCore
import GatewayStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Start-up must not load the backlog: with a million messages queued the
/// gateway opens its ports and starts publishing at once, and its memory
/// stays bounded while it drains. Timings are printed, not asserted (speed is
/// measured by bench/); memory is asserted, as a bound.
@Suite("A backlog of 1,000,000 messages")
struct BacklogStartupTests {
    static let count = 1_000_000

    @Test("ready and publishing at once, with bounded memory, when 1,000,000 messages are queued")
    func millionQueued() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try TemporaryDirectory("backlog")
        defer { directory.remove() }
        let broker = try MosquittoBroker(certificates: certificates, directory: directory)
        var settings = GatewaySettings()
        settings.sync = "normal"
        settings.outboxMaxMessages = 2_000_000
        let gateway = try GatewayProcess(settings: settings, brokerPort: broker.port, certificates: certificates, directory: directory)
        do {
            try await broker.start()

            let clock = ContinuousClock()
            let inserting = clock.now
            // A minute of CPU on a slow machine: not on the cooperative pool.
            let stateDirectory = gateway.stateDirectory
            try await onOwnThread("backlog-fill") { try Self.fill(stateDirectory, count: Self.count) }
            let insertTime = clock.now - inserting
            let databaseBytes = (try? FileManager.default.attributesOfItem(atPath: gateway.stateDirectory + "/outbox.sqlite")[.size] as? Int) ?? 0

            let starting = clock.now
            try await gateway.start(timeout: .seconds(30), interval: .milliseconds(5))
            let readyAfter = clock.now - starting
            let pid = try #require(gateway.pid)
            let rssAtReady = Self.residentMegabytes(pid)

            // Publishing: the delivered counter moves.
            let firstDelivery = try await eventually(timeout: .seconds(60), interval: .milliseconds(10), "the first PUBACK") { () -> Duration? in
                let metrics = try await PrometheusSamples.scrape(gateway)
                return (metrics.value("iotgw_messages_delivered_total", ["qos": "1"]) ?? 0) > 0 ? clock.now - starting : nil
            }

            // Drain for a while, sampling memory.
            var peak = rssAtReady
            for _ in 0..<25 {
                try await Task.sleep(for: .milliseconds(200))
                peak = max(peak, Self.residentMegabytes(pid))
            }
            let metrics = try await PrometheusSamples.scrape(gateway)
            let delivered = metrics.value("iotgw_messages_delivered_total", ["qos": "1"]) ?? 0
            let depth = metrics.value("iotgw_outbox_messages", ["qos": "1"]) ?? -1

            print("""
                backlog: \(Self.count) messages queued (\(databaseBytes / 1_048_576) MiB database), inserted through OutboxStore in \(insertTime); \
                ready after \(readyAfter) (process start to 'gateway ready'); first PUBACK after \(firstDelivery); \
                RSS \(rssAtReady) MiB at ready, \(peak) MiB peak over 5 s of draining; \(Int(delivered)) delivered in that time, \(Int(depth)) left
                """)
            #expect(delivered > 0)
            #expect(depth == Double(Self.count) - delivered || depth < Double(Self.count))
            // Loading the backlog would take hundreds of MiB; the window and
            // SQLite's page cache take a few.
            #expect(rssAtReady < 64, "RSS at ready: \(rssAtReady) MiB")
            #expect(peak < 64, "peak RSS while draining: \(peak) MiB")

            let (status, forced) = await gateway.terminate()
            #expect(!forced && status == .exited(0))
            await broker.shutdown()
        } catch {
            await gateway.kill()
            await broker.shutdown()
            throw HarnessError("\(error)\n--- gateway log ---\n\(tail(gateway.log, lines: 40))")
        }
    }

    /// Writes `count` QoS 1 messages straight into the outbox through its own API.
    static func fill(_ stateDirectory: String, count: Int) throws {
        let state = try StateDirectory(path: stateDirectory)
        let store = try OutboxStore(path: state.databasePath, sync: .normal)
        let received = Date()
        var next = 0
        while next < count {
            let batch = (next..<min(count, next + 50_000)).map { index in
                OutboundMessage(
                    topic: "it/backlog/device-\(index % 1000)/temperature", qos: .atLeastOnce, retain: false,
                    payload: Array("{\"seq\":\(index),\"t\":21.5}".utf8), receivedAt: received, mapping: "temperature"
                )
            }
            _ = try store.append(batch)
            next += batch.count
        }
    }

    static func residentMegabytes(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return -1 }
        return kilobytes / 1024
    }
}
