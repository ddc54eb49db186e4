import Foundation
import Yams

/// Parses each section of the configuration, applying defaults (see
/// docs/configuration.md) and recording located issues.
struct SectionParser {
    let reader: NodeReader
    let baseDirectory: String
    /// Listen addresses and PEM files as written, for the checks that span sections.
    let found = ConfigFindings()

    static let defaultStateDirectory = "/var/lib/iot-gateway"

    func gateway(_ node: Node?) -> GatewaySettings? {
        guard let node, let entries = reader.mapping(node, what: "gateway", allowed: ["name", "state_dir"]) else {
            return nil
        }
        var name: String?
        if let value = entries.required("name", in: "gateway") {
            name = reader.string(value, what: "gateway.name")
            if let text = name, let problem = Identifiers.nameProblem(text) {
                reader.fail("gateway.name \(problem)", at: value)
                name = nil
            }
        }
        var stateDirectory = Self.defaultStateDirectory
        if let value = entries["state_dir"], let text = reader.string(value, what: "gateway.state_dir") {
            stateDirectory = FilePaths.resolve(text, against: baseDirectory)
        }
        guard let name else { return nil }
        return GatewaySettings(name: name, stateDirectory: stateDirectory)
    }

    /// Plain listeners carry no credentials: they stay on this machine
    /// unless the configuration names another address.
    static let defaultCoAPListen = ListenAddress(host: "127.0.0.1", port: 5683)
    static let defaultHTTPListen = ListenAddress(host: "127.0.0.1", port: 8080)

    func coap(_ node: Node?, devices: DeviceSettings) -> CoAPSettings? {
        var settings = CoAPSettings(listen: [Self.defaultCoAPListen], maxBody: 131_072)
        guard let node else {
            settings.dtls = dtls(nil, devices: devices) ?? DTLSSettings()
            return settings
        }
        guard let entries = reader.mapping(node, what: "coap", allowed: ["listen", "max_body", "dtls", "notify_retransmits"]) else { return nil }
        var ok = true
        if let value = entries["listen"] {
            if let list = listen(value, what: "coap.listen") { settings.listen = list } else { ok = false }
        }
        if let dtls = dtls(entries["dtls"], devices: devices) { settings.dtls = dtls } else { ok = false }
        warnIfExposed(settings.listen, node: entries["listen"], what: "coap.listen", kind: "plain CoAP", secure: "coap.dtls")
        if let value = entries["max_body"] {
            if let size = reader.byteSize(value, what: "coap.max_body", range: 16...16 << 20) { settings.maxBody = size } else { ok = false }
        }
        if let value = entries["notify_retransmits"] {
            if let count = reader.int(value, what: "coap.notify_retransmits", range: 0...8) { settings.notifyRetransmits = count } else { ok = false }
        }
        return ok ? settings : nil
    }

    func http(_ node: Node?, devices: DeviceSettings) -> HTTPSettings? {
        var settings = HTTPSettings(
            listen: [Self.defaultHTTPListen],
            maxBody: 131_072,
            maxConnections: 1024,
            maxConnectionsPerIP: 64,
            idleTimeout: 30,
            threads: 2
        )
        guard let node else { return settings }
        guard let entries = reader.mapping(
            node, what: "http",
            allowed: ["listen", "max_body", "max_connections", "max_connections_per_ip", "idle_timeout", "threads", "tls"]
        ) else { return nil }
        var ok = true
        if let value = entries["listen"] {
            if let list = listen(value, what: "http.listen") { settings.listen = list } else { ok = false }
        }
        if let value = entries["tls"] {
            if let tls = httpTLS(value, devices: devices) { settings.tls = tls } else { ok = false }
        }
        warnIfExposed(settings.listen, node: entries["listen"], what: "http.listen", kind: "plain HTTP", secure: "http.tls")
        if let value = entries["max_body"] {
            if let size = reader.byteSize(value, what: "http.max_body", range: 0...64 << 20) { settings.maxBody = size } else { ok = false }
        }
        func integer(_ key: String, _ range: ClosedRange<Int>, _ apply: (Int) -> Void) {
            guard let value = entries[key] else { return }
            if let number = reader.int(value, what: "http.\(key)", range: range) { apply(number) } else { ok = false }
        }
        integer("max_connections", 1...65_536) { settings.maxConnections = $0 }
        integer("max_connections_per_ip", 1...65_536) { settings.maxConnectionsPerIP = $0 }
        integer("idle_timeout", 1...3600) { settings.idleTimeout = $0 }
        integer("threads", 1...64) { settings.threads = $0 }
        return ok ? settings : nil
    }

    func outbox(_ node: Node?) -> OutboxSettings? {
        var settings = OutboxSettings(maxMessages: 1_000_000, maxBytes: 512 << 20, sync: .full)
        guard let node else { return settings }
        guard let entries = reader.mapping(
            node, what: "outbox",
            allowed: ["max_messages", "max_bytes", "sync", "qos0_when_offline", "qos0_max_messages", "qos0_max_bytes"]
        ) else {
            return nil
        }
        var ok = true
        if let value = entries["max_messages"] {
            if let number = reader.int(value, what: "outbox.max_messages", range: 1...1_000_000_000) {
                settings.maxMessages = number
            } else { ok = false }
        }
        if let value = entries["max_bytes"] {
            if let size = reader.byteSize(value, what: "outbox.max_bytes", range: 1024...(1 << 50)) {
                settings.maxBytes = size
            } else { ok = false }
        }
        if let value = entries["sync"], let text = reader.string(value, what: "outbox.sync") {
            if let mode = SyncMode(rawValue: text) {
                settings.sync = mode
            } else {
                reader.fail("outbox.sync must be 'full' or 'normal', got '\(text)'", at: value)
                ok = false
            }
        }
        if let value = entries["qos0_when_offline"], let text = reader.string(value, what: "outbox.qos0_when_offline") {
            if let mode = OfflineQoS0(rawValue: text) {
                settings.qos0WhenOffline = mode
            } else {
                reader.fail("outbox.qos0_when_offline must be 'drop' or 'keep', got '\(text)'", at: value)
                ok = false
            }
        }
        if let value = entries["qos0_max_messages"] {
            if let number = reader.int(value, what: "outbox.qos0_max_messages", range: 1...10_000_000) {
                settings.qos0MaxMessages = number
            } else { ok = false }
        }
        if let value = entries["qos0_max_bytes"] {
            if let size = reader.byteSize(value, what: "outbox.qos0_max_bytes", range: 1024...(1 << 40)) {
                settings.qos0MaxBytes = size
            } else { ok = false }
        }
        return ok ? settings : nil
    }

    static let defaultAdminListen = ListenAddress(host: "127.0.0.1", port: 9683)

    func admin(_ node: Node?) -> AdminSettings? {
        var settings = AdminSettings(listen: [Self.defaultAdminListen])
        guard let node else { return settings }
        guard let entries = reader.mapping(node, what: "admin", allowed: ["listen"]) else { return nil }
        if let value = entries["listen"] {
            guard let list = listen(value, what: "admin.listen") else { return nil }
            settings.listen = list
        }
        return settings
    }

    func log(_ node: Node?) -> LogSettings? {
        var settings = LogSettings(level: .info)
        guard let node else { return settings }
        guard let entries = reader.mapping(node, what: "log", allowed: ["level"]) else { return nil }
        if let value = entries["level"], let text = reader.string(value, what: "log.level") {
            guard let level = LogLevel(rawValue: text) else {
                let names = LogLevel.allCases.map(\.rawValue).joined(separator: ", ")
                reader.fail("log.level must be one of \(names); got '\(text)'", at: value)
                return nil
            }
            settings.level = level
        }
        return settings
    }

    /// A plain listener on a non-loopback address is allowed (trusted
    /// networks of constrained devices) but worth saying out loud.
    private func warnIfExposed(_ addresses: [ListenAddress], node: Node?, what: String, kind: String, secure: String) {
        guard let node, let exposed = addresses.first(where: { !$0.isLoopback }) else { return }
        reader.warn(
            "\(what) \(exposed) takes \(kind) from the network: it carries no credentials, so only auth: anonymous mappings answer there; devices that authenticate use \(secure)",
            at: node
        )
    }

    func listen(_ node: Node, what: String) -> [ListenAddress]? {
        guard let list = reader.stringList(node, what: what) else { return nil }
        var result: [ListenAddress] = []
        var ok = true
        for (text, item) in list {
            if let address = ListenAddress.parse(text) {
                found.listeners.append((what, address, reader.location(item)))
                if result.contains(address) {
                    reader.fail("\(what): '\(text)' is listed twice", at: item)
                    ok = false
                }
                result.append(address)
            } else {
                reader.fail("\(what): '\(text)' is not an address; use an IP literal and port such as 0.0.0.0:5683 or [::]:5683", at: item)
                ok = false
            }
        }
        return ok ? result : nil
    }
}

/// Files the configuration names: the TLS files of every section.
extension SectionParser {
    /// A path, resolved against the configuration's directory, that this
    /// process can read now.
    func readableFile(_ node: Node, what: String) -> String? {
        guard let text = reader.string(node, what: what) else { return nil }
        let path = FilePaths.resolve(text, against: baseDirectory)
        if access(path, R_OK) != 0 {
            reader.fail("\(what): cannot read '\(text)': \(String(cString: strerror(errno)))", at: node)
            return nil
        }
        found.files[what] = PEMFileReference(key: what, path: path, written: text, location: reader.location(node))
        return path
    }

    /// A readable private key that not every user may read.
    func privateKeyFile(_ node: Node, what: String) -> String? {
        guard let path = readableFile(node, what: what) else { return nil }
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IROTH != 0 {
            let mode = String(status.st_mode & 0o777, radix: 8)
            reader.fail("\(what): the private key is readable by every user (mode \(mode)); chmod 600 it (or 640 with the service's group)", at: node)
            return nil
        }
        return path
    }
}

/// Rules for names that end up in MQTT client IDs and topics.
enum Identifiers {
    static func nameProblem(_ name: String) -> String? {
        guard (1...128).contains(name.utf8.count) else { return "must be 1 to 128 characters long" }
        let allowed = name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || $0 == ":" || $0 == "_" || $0 == "-"
        }
        return allowed ? nil : "may contain only letters, digits, ':', '_' and '-'"
    }

    static func clientIDProblem(_ id: String) -> String? {
        guard (1...65_535).contains(id.utf8.count) else { return "must not be empty" }
        if id.unicodeScalars.contains(where: { $0.value < 0x20 }) { return "must not contain control characters" }
        return nil
    }
}
