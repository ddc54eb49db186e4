import Foundation
import GatewayCore
import Logging

/// Keeps the running gateway's device registry in step with its files:
/// looks at them every second (and at once on SIGHUP), and when one
/// changed, appeared or vanished, loads the whole registry again. A registry
/// with any problem is not used: the previous one stays, and each problem is
/// logged with its FILE:LINE:COLUMN, once per change of the files.
///
/// Nothing queued is touched: a device removed or disabled is refused from
/// its next request on, and what it sent before is still delivered.
public final class RegistryWatcher: Sendable {
    /// How often the files are looked at.
    static let interval = 1.0

    private struct Control {
        var reloadRequested = false
        var stopRequested = false
    }

    private let settings: DeviceSettings
    private let security: DeviceSecurity
    private let observer: any GatewayObserver
    private let logger: Logger
    private let control = Guarded(Control())
    private let thread = WorkerThread(name: "registry-watch")

    public init(settings: DeviceSettings, security: DeviceSecurity, observer: any GatewayObserver, logger: Logger) {
        self.settings = settings
        self.security = security
        self.observer = observer
        self.logger = logger
    }

    /// Starts watching from the files as they are now (the registry in
    /// `security` was loaded from them).
    public func start() {
        let initial = FileStamps(RegistryLoader.files(settings.files))
        let registry = security.registry
        observer.registryLoaded(devices: registry.count, disabled: registry.devices.filter(\.disabled).count, reload: false)
        thread.start { [self] in run(from: initial) }
    }

    /// Reloads now, whether or not the files look changed (SIGHUP).
    public func requestReload() {
        control.update { $0.reloadRequested = true }
    }

    public func stop() {
        thread.stop { control.update { $0.stopRequested = true } }
    }

    private func run(from initial: FileStamps) {
        var seen = initial
        while true {
            let (forced, stopping) = thread.idle { control.wait(
                until: { $0.reloadRequested || $0.stopRequested },
                deadline: .after(Self.interval)
            ) { state -> (Bool, Bool) in
                defer { state.reloadRequested = false }
                return (state.reloadRequested, state.stopRequested)
            } }
            if stopping { break }
            let now = FileStamps(RegistryLoader.files(settings.files))
            guard forced || now != seen else { continue }
            seen = now
            reload(reason: forced ? "signal" : "files changed")
        }
    }

    private func reload(reason: String) {
        do {
            let loaded = try RegistryLoader.load(settings)
            let before = security.registry
            security.replace(loaded.registry)
            let disabled = loaded.registry.devices.filter(\.disabled).count
            observer.registryLoaded(devices: loaded.registry.count, disabled: disabled, reload: true)
            logger.info("device registry reloaded", metadata: [
                "registry.reason": "\(reason)",
                "registry.devices": "\(loaded.registry.count)",
                "registry.disabled": "\(disabled)",
                "registry.added": "\(Self.difference(loaded.registry, minus: before).joined(separator: ","))",
                "registry.removed": "\(Self.difference(before, minus: loaded.registry).joined(separator: ","))",
            ])
            for warning in loaded.warnings {
                logger.warning("device registry warning", metadata: [
                    "config.location": "\(warning.location)", "config.warning": "\(warning.message)",
                ])
            }
        } catch {
            observer.registryReloadFailed()
            for issue in error.issues {
                logger.error("device registry not reloaded; keeping the previous one", metadata: [
                    "config.location": "\(issue.location)", "config.error": "\(issue.message)",
                ])
            }
        }
    }

    /// Ids in `registry` that are not in `other`, at most 20 (for the log line).
    private static func difference(_ registry: DeviceRegistry, minus other: DeviceRegistry) -> [String] {
        Array(registry.devices.lazy.map(\.id).filter { other.device(id: $0) == nil }.prefix(20))
    }
}

/// What a set of files looks like on disk, to notice any change cheaply:
/// each path with its inode, size and modification time (nanoseconds), so
/// an atomic rename, a rewrite in place and a touch all count.
struct FileStamps: Equatable {
    struct Stamp: Equatable {
        var inode: UInt64
        var size: Int64
        var modified: Int64
    }

    private var stamps: [String: Stamp] = [:]

    init(_ paths: [String]) {
        for path in paths {
            var status = stat()
            guard stat(path, &status) == 0 else { continue }
            stamps[path] = Stamp(
                inode: UInt64(status.st_ino), size: Int64(status.st_size),
                modified: Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
            )
        }
    }
}
