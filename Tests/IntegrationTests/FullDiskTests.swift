import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The full-disk issue's proofs, on a real 6 MiB tmpfs mounted over the
/// gateway's state directory (mounting needs root, as CI runs).
@Suite("A full disk", .enabled(if: getuid() == 0, "mounts a tmpfs: needs root (CI runs as root)"))
struct FullDiskTests {
    /// A reading of about 200 bytes, like a small JSON sensor report.
    static let body = Array(("{\"celsius\":21.5,\"note\":\"" + String(repeating: "x", count: 160) + "\"}").utf8)

    static func url(_ gateway: GatewayProcess, _ device: String) -> String {
        gateway.httpURL("/sensors/\(device)/temperature")
    }

    /// Runs `body` with a `size` tmpfs over the gateway's state directory,
    /// mounted before the gateway starts and unmounted afterwards.
    static func onSmallDisk<T>(
        _ label: String, size: String = "6m", _ body: (EndToEnd, _ stateDirectory: String) async throws -> T
    ) async throws -> T {
        var mountPoint: String?
        defer {
            if let mountPoint {
                _ = umount2(mountPoint, Int32(MNT_DETACH))
                try? FileManager.default.removeItem(atPath: (mountPoint as NSString).deletingLastPathComponent)
            }
        }
        return try await EndToEnd.run(label, brokerDownAtStart: true, gatewayEnvironment: { directory in
            let state = directory.path + "/gateway-state"
            let result = try await ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", state])
            guard result.succeeded else { throw HarnessError("mount failed: \(result.summary)") }
            mountPoint = state
            return [:]
        }) { env in
            try await body(env, env.gateway.stateDirectory)
        }
    }

    /// Posts one reading per device name, on one keep-alive connection;
    /// returns the devices answered 202 and every other answer's status.
    static func post(_ gateway: GatewayProcess, devices: [String]) async throws -> (accepted: [String], others: [Int]) {
        let answers = try await HTTP.postMany(devices.map { url(gateway, $0) }, body: body)
        var accepted: [String] = [], others: [Int] = []
        for (device, answer) in zip(devices, answers) {
            if answer.status == 202 { accepted.append(device) } else { others.append(answer.status) }
        }
        return (accepted, others)
    }

    /// Fills what is left of the filesystem with one file.
    static func fill(_ path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw HarnessError("cannot create \(path)") }
        defer { close(descriptor) }
        let chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let written = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written <= 0 { break }
        }
        fsync(descriptor)
    }

    /// The gateway's log lines at warning level or above, but for the
    /// connect attempts of a broker that is down on purpose.
    static func problemLines(_ log: String) -> [Substring] {
        log.split(separator: "\n").filter {
            ($0.contains(" warning ") || $0.contains(" error ") || $0.contains(" critical "))
                && !$0.contains("upstream connect attempt")
        }
    }

    /// After the disk filled, SQLite still writes into its WAL's and the
    /// database's free pages for a while: posts in small batches until the
    /// first refusal. Returns the devices accepted meanwhile.
    static func postUntilRefused(_ gateway: GatewayProcess, prefix: String) async throws -> [String] {
        var accepted: [String] = []
        for batch in 0..<50 {
            let result = try await post(gateway, devices: (0..<100).map { "\(prefix)-\(batch)-\($0)" })
            accepted += result.accepted
            if !result.others.isEmpty { return accepted }
        }
        throw HarnessError("the gateway never refused a reading on a full disk")
    }

    static func topics(_ devices: [String]) -> Set<String> {
        Set(devices.map { "it/sensors/\($0)/temperature" })
    }

    @Test("on a 6 MiB disk max_bytes is lowered and said; the queue refuses as full before the disk is; everything acknowledged is delivered and accepting goes on without a restart")
    func smallDiskFillsTheQueueNotTheDisk() async throws {
        try await Self.onSmallDisk("full-disk-queue") { env, state in
            let gateway = env.gateway
            var accepted: [String] = []
            var refused: [Int] = []
            var batch = 0
            while refused.isEmpty && batch < 20 {
                let devices = (0..<2000).map { "sd-\(batch)-\($0)" }
                let result = try await Self.post(gateway, devices: devices)
                accepted += result.accepted
                refused += result.others
                batch += 1
            }
            #expect(!refused.isEmpty, "the queue never filled")
            #expect(refused.allSatisfy { $0 == 503 }, "\(Set(refused))")
            #expect(gateway.currentLog.contains("outbox.max_bytes lowered to what the disk can hold"))
            // The disk itself never filled: no failed commit.
            #expect(!gateway.currentLog.contains("outbox commit failed"), "\(tail(gateway.currentLog, lines: 20))")
            let free = try FileManager.default.attributesOfFileSystem(forPath: state)[.systemFreeSize] as? Int ?? 0
            #expect(free > 0)

            try await env.broker.start()
            let expected = Self.topics(accepted)
            try await env.subscriber.waitUntil(timeout: .seconds(240), "all \(accepted.count) acknowledged readings") {
                expected.isSubset(of: Set($0.map(\.topic)))
            }
            // The outbox empties.
            try await eventually(timeout: .seconds(30), interval: .milliseconds(200), "an empty outbox") {
                try await PrometheusSamples.scrape(gateway).value("iotgw_outbox_messages", ["qos": "1"]) == 0 ? true : nil
            }
            // Room again, without a restart.
            let after = try await Self.post(gateway, devices: ["sd-after"])
            #expect(after.accepted == ["sd-after"], "answers \(after.others)")
            try await env.subscriber.waitUntil(timeout: .seconds(60), "the reading after") {
                $0.contains { $0.topic == "it/sensors/sd-after/temperature" }
            }
            #expect(Self.problemLines(gateway.currentLog).count <= 3, "\(Self.problemLines(gateway.currentLog).joined(separator: "\n"))")
        }
    }

    @Test("when something else fills the disk: QoS 1 is refused at once with 503 'storage is full', delivery goes on, and accepting resumes when the space returns; a handful of log lines for the episode")
    func otherFilesFillTheDisk() async throws {
        try await Self.onSmallDisk("full-disk-other") { env, state in
            let gateway = env.gateway
            let first = try await Self.post(gateway, devices: (0..<1000).map { "of-\($0)" })
            #expect(first.others.isEmpty, "\(first.others)")
            let filler = state + "/filler"
            try Self.fill(filler)
            let accepted = try await first.accepted + Self.postUntilRefused(gateway, prefix: "of-late")

            var storageFull: [String] = []
            for index in 0..<20 {
                let response = try await HTTP.post(Self.url(gateway, "of-full-\(index)"), body: Self.body)
                #expect(response.status == 503, "\(response)")
                if response.text.contains("storage is full") { storageFull.append(response.text) }
            }
            #expect(storageFull.count == 20, "503 without 'storage is full': \(20 - storageFull.count)")
            #expect(gateway.currentLog.components(separatedBy: "outbox storage is full").count - 1 == 1)

            // Delivery goes on: the deletions commit in the reserve's room.
            try await env.broker.start()
            let expected = Self.topics(accepted)
            try await env.subscriber.waitUntil(timeout: .seconds(240), "all \(accepted.count) acknowledged readings") {
                expected.isSubset(of: Set($0.map(\.topic)))
            }
            try FileManager.default.removeItem(atPath: filler)
            let resumed = try await eventually(timeout: .seconds(30), interval: .milliseconds(200), "a reading accepted again") {
                let answer = try await HTTP.post(Self.url(gateway, "of-back"), body: Self.body)
                return answer.status == 202 ? answer : nil
            }
            #expect(resumed.status == 202)
            try await env.subscriber.waitUntil(timeout: .seconds(60), "the reading after") {
                $0.contains { $0.topic == "it/sensors/of-back/temperature" }
            }
            #expect(gateway.currentLog.contains("outbox storage has room again; accepting"))
            let problems = Self.problemLines(gateway.currentLog)
            #expect(problems.count <= 4, "\(problems.joined(separator: "\n"))")
            let metrics = try await PrometheusSamples.scrape(gateway)
            #expect((metrics.value("iotgw_messages_refused_total", ["reason": "disk_full"]) ?? 0) >= 19)
        }
    }

    @Test("SIGTERM while the disk is full exits by itself; after a restart nothing acknowledged is missing")
    func stoppingOnAFullDisk() async throws {
        try await Self.onSmallDisk("full-disk-stop") { env, state in
            let gateway = env.gateway
            let first = try await Self.post(gateway, devices: (0..<500).map { "st-\($0)" })
            #expect(first.others.isEmpty, "\(first.others)")
            let filler = state + "/filler"
            try Self.fill(filler)
            let accepted = try await first.accepted + Self.postUntilRefused(gateway, prefix: "st-late")
            let refused = try await Self.post(gateway, devices: (0..<5).map { "st-full-\($0)" })
            #expect(refused.accepted.isEmpty)

            let stop = await gateway.terminate(grace: .seconds(20))
            #expect(!stop.forced, "SIGTERM did not end the gateway within 20 s")

            try FileManager.default.removeItem(atPath: filler)
            try await env.broker.start()
            try await gateway.start()
            let expected = Self.topics(accepted)
            try await env.subscriber.waitUntil(timeout: .seconds(120), "all \(accepted.count) acknowledged readings") {
                expected.isSubset(of: Set($0.map(\.topic)))
            }
        }
    }
}
