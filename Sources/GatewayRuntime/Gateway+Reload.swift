import Foundation
import GatewayCore
import Logging

/// What reloads share: one runs at a time, and the table in use is what
/// the next one is compared with.
struct ReloadState: Sendable {
    var mappings: [MappingRule]
    var inProgress = false
}

extension Gateway {
    /// SIGHUP (`systemctl reload`): re-reads the configuration file and its
    /// mapping files and swaps the mapping table whole; re-reads the device
    /// registry. A file with errors changes nothing: each error is logged
    /// with its FILE:LINE:COLUMN and the running table stays. Messages
    /// already accepted keep the topic their mapping gave them.
    public func reload() {
        guard let parts = running.withLock({ $0 }) else {
            logger.notice("reload requested while starting or stopping; ignored")
            return
        }
        let first = reloads.withLock { state -> Bool in
            defer { state.inProgress = true }
            return !state.inProgress
        }
        guard first else {
            logger.notice("reload requested while one is running; ignored")
            return
        }
        defer { reloads.withLock { $0.inProgress = false } }
        supervisor.reloading()
        let outcome = reloadMappings(parts)
        if let watcher = parts.registryWatcher {
            watcher.requestReload()
        }
        supervisor.reloaded(outcome)
    }

    /// Returns what happened, for systemd's STATUS=.
    private func reloadMappings(_ parts: Parts) -> String {
        let fresh: GatewayConfig
        do {
            fresh = try ConfigLoader.load(path: config.file, loadingRegistry: false)
        } catch {
            for issue in error.issues {
                logger.error("reload refused: configuration error; the running mappings stay", metadata: [
                    "config.location": "\(issue.location)",
                    "config.error": "\(issue.message)",
                ])
            }
            return "reload failed (\(error.issues.count) error\(error.issues.count == 1 ? "" : "s")); running as before"
        }
        for warning in fresh.warnings {
            logger.warning("configuration adjusted", metadata: ["config.location": "\(warning.location)", "config.warning": "\(warning.message)"])
        }
        let stale = Self.sectionsNeedingRestart(running: config, fresh: fresh)
        if !stale.isEmpty {
            logger.warning("reload applies mappings and devices only; these changes wait for a restart", metadata: [
                "config.sections": "\(stale.joined(separator: ","))",
            ])
        }
        let upstream = config.upstream
        let router = Router(rules: fresh.mappings, gatewayName: config.gateway.name, limits: upstream.limits)
        let change = reloads.withLock { state -> MappingChange in
            defer { state.mappings = fresh.mappings }
            return MappingChange(from: state.mappings, to: fresh.mappings)
        }
        parts.intake.replaceRouter(router)
        logger.info("mappings reloaded", metadata: [
            "mappings.total": "\(fresh.mappings.count)",
            "mappings.added": "\(change.added.joined(separator: ","))",
            "mappings.removed": "\(change.removed.joined(separator: ","))",
            "mappings.changed": "\(change.changed.joined(separator: ","))",
        ])
        return "reloaded \(fresh.mappings.count) mapping\(fresh.mappings.count == 1 ? "" : "s")"
    }

    /// Sections that differ but are only read at start (listeners, the
    /// broker, the outbox): a reload cannot apply them without a restart.
    static func sectionsNeedingRestart(running: GatewayConfig, fresh: GatewayConfig) -> [String] {
        let changed: [(String, Bool)] = [
            ("gateway", running.gateway != fresh.gateway),
            ("upstream", running.upstream != fresh.upstream),
            ("coap", running.coap != fresh.coap),
            ("http", running.http != fresh.http),
            ("outbox", running.outbox != fresh.outbox),
            ("admin", running.admin != fresh.admin),
            ("log", running.log != fresh.log),
            ("devices", running.devices != fresh.devices),
        ]
        return changed.filter(\.1).map(\.0)
    }

    /// `queued 12 (3400 B); upstream connected 1/1`, for systemd's STATUS=.
    static func status(_ parts: Parts) -> String {
        let queued = parts.outbox.queuedCounts
        let connected = parts.outbox.connectedCount
        let total = parts.forwarders.count
        let upstream = connected == total ? "connected" : "disconnected"
        return "queued \(queued.messages) (\(queued.bytes) B); upstream \(upstream) \(connected)/\(total)"
    }
}

/// Mapping names added, removed and changed between two tables.
struct MappingChange: Equatable {
    var added: [String] = []
    var removed: [String] = []
    var changed: [String] = []

    init(from old: [MappingRule], to new: [MappingRule]) {
        /// What the rule does, not where it is written: moving a mapping
        /// within its file is no change. (Compared with `==`: a description
        /// would list a `Set`'s members in no fixed order.)
        func meaning(_ rule: MappingRule) -> MappingRule {
            var rule = rule
            rule.location = SourceLocation(file: "", line: 0, column: 0)
            return rule
        }
        let before = Dictionary(old.map { ($0.name, meaning($0)) }, uniquingKeysWith: { first, _ in first })
        let after = Dictionary(new.map { ($0.name, meaning($0)) }, uniquingKeysWith: { first, _ in first })
        added = new.map(\.name).filter { before[$0] == nil }
        removed = old.map(\.name).filter { after[$0] == nil }
        changed = new.map(\.name).filter { name in before[name].map { $0 != after[name] } ?? false }
    }
}
