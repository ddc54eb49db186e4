import Foundation
import GatewayCore
import Logging
import Synchronization
import Testing
@testable import GatewayRuntime

/// Counts what the watcher reports.
private final class ReloadObserver: GatewayObserver {
    let loads = Mutex<[(devices: Int, disabled: Int, reload: Bool)]>([])
    let failures = Atomic<Int>(0)

    func requestAnswered(protocol: IngressProtocol, outcome: RequestOutcome) {}
    func messageAccepted(qos: QoS) {}
    func messagesDelivered(qos: QoS, latencies: [Double]) {}
    func messagesResent(count: Int) {}
    func messagesExpired(qos: QoS, count: Int) {}
    func messagesShed(count: Int) {}
    func messagesDropped(reason: String, qos: QoS, count: Int) {}
    func messageRefused(reason: String) {}
    func brokerRefused(reasonCode: Int) {}
    func upstreamConnection(_ connection: Int, connected: Bool) {}
    func commitFinished(messages: Int, deletions: Int, seconds: Double) {}
    func registryLoaded(devices: Int, disabled: Int, reload: Bool) {
        loads.withLock { $0.append((devices, disabled, reload)) }
    }
    func registryReloadFailed() { failures.add(1, ordering: .relaxed) }
}

@Suite("Registry watcher")
struct RegistryWatcherTests {
    /// Polls `condition` every 20 ms for up to 20 s (returns as soon as it holds).
    func eventually(_ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition()
    }

    func write(_ url: URL, _ text: String) throws {
        // As `devices add` does: a new file renamed into place.
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".tmp-\(UUID().uuidString)")
        try Data(text.utf8).write(to: temporary)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: temporary.path)
        guard rename(temporary.path, url.path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    @Test func changesAreTakenAndABrokenRegistryKeepsThePreviousOne() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-watch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("a.yaml")
        try write(file, "devices:\n  - id: d1\n    token_sha256: \(Secrets.tokenHash("t1").hex)\n")

        let settings = DeviceSettings(files: [directory.appendingPathComponent("*.yaml").path])
        let security = DeviceSecurity(registry: try RegistryLoader.load(settings).registry, limit: FailureLimit())
        let observer = ReloadObserver()
        let watcher = RegistryWatcher(settings: settings, security: security, observer: observer, logger: Logger(label: "test"))
        watcher.start()
        defer { watcher.stop() }
        #expect(observer.loads.withLock { $0.first?.reload } == false)

        // A second device in a new file, and the first one disabled.
        try write(directory.appendingPathComponent("b.yaml"), "devices:\n  - id: d2\n    token_sha256: \(Secrets.tokenHash("t2").hex)\n")
        try write(file, "devices:\n  - id: d1\n    disabled: true\n    token_sha256: \(Secrets.tokenHash("t1").hex)\n")
        #expect(eventually { security.registry.device(id: "d2") != nil && security.registry.device(id: "d1")?.disabled == true })

        // Broken: the previous registry stays, and the failure is counted once.
        try write(file, "devices:\n  - id: d1\n    token_sha256: nothex\n")
        #expect(eventually { observer.failures.load(ordering: .relaxed) == 1 })
        Thread.sleep(forTimeInterval: 2.5)
        #expect(observer.failures.load(ordering: .relaxed) == 1, "the same broken files were reported again")
        #expect(security.registry.device(id: "d1")?.disabled == true)

        // Removing a file removes its device.
        try FileManager.default.removeItem(at: directory.appendingPathComponent("b.yaml"))
        try write(file, "devices:\n  - id: d1\n    token_sha256: \(Secrets.tokenHash("t1").hex)\n")
        #expect(eventually { security.registry.device(id: "d2") == nil && security.registry.device(id: "d1")?.disabled == false })

        // A forced reload (SIGHUP) reloads unchanged files too.
        let before = observer.loads.withLock { $0.count }
        watcher.requestReload()
        #expect(eventually { observer.loads.withLock { $0.count } == before + 1 })
    }
}
