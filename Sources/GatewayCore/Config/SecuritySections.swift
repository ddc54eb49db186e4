import Foundation
import Yams

/// The sections that decide who may send: `devices`, `coap.dtls`, `http.tls`.
extension SectionParser {
    static let defaultDTLSListen = ListenAddress(host: "0.0.0.0", port: 5684)
    static let defaultHTTPSListen = ListenAddress(host: "0.0.0.0", port: 8443)

    func devices(_ node: Node?) -> DeviceSettings? {
        var settings = DeviceSettings()
        guard let node else { return settings }
        guard let entries = reader.mapping(
            node, what: "devices", allowed: ["files", "ca_file", "max_failures", "failure_window", "lockout"]
        ) else { return nil }
        var ok = true
        if let value = entries["files"], let list = reader.stringList(value, what: "devices.files") {
            settings.files = list.map { FilePaths.resolve($0.0, against: baseDirectory) }
            if list.isEmpty {
                reader.fail("devices.files must name at least one file or pattern", at: value)
                ok = false
            }
        } else if entries["files"] == nil {
            reader.fail("missing required key 'files' in devices (e.g. files: [\"devices/*.yaml\"])", at: node)
            ok = false
        } else {
            ok = false
        }
        if let value = entries["ca_file"] {
            if let path = readableFile(value, what: "devices.ca_file") {
                settings.caFile = path
                settings.caFileLocation = reader.location(value)
            } else { ok = false }
        }
        if let value = entries["max_failures"] {
            if let number = reader.int(value, what: "devices.max_failures", range: 0...1_000_000) {
                settings.failureLimit.failures = number
            } else { ok = false }
        }
        func seconds(_ key: String, _ apply: (Double) -> Void) {
            guard let value = entries[key] else { return }
            guard let duration = reader.duration(value, what: "devices.\(key)") else { ok = false; return }
            guard (1...86_400).contains(duration) else {
                reader.fail("devices.\(key) must be between 1s and 1d", at: value)
                ok = false
                return
            }
            apply(duration)
        }
        seconds("failure_window") { settings.failureLimit.window = $0 }
        seconds("lockout") { settings.failureLimit.lockout = $0 }
        return ok ? settings : nil
    }

    /// Loads the registry files at configuration time; their problems are
    /// the configuration's.
    func registry(_ settings: DeviceSettings, section: Node) -> DeviceRegistry {
        var patterns: [(String, Node?)] = settings.files.map { ($0, nil) }
        if case .mapping(let mapping) = section, let files = mapping["files"] {
            let nodes: [Node] = files.sequence.map(Array.init) ?? [files]
            if nodes.count == patterns.count {
                patterns = zip(settings.files, nodes).map { ($0, $1) }
            }
        }
        return RegistryLoader.load(patterns: patterns, issues: reader.issues, reader: reader).registry
    }

    func dtls(_ node: Node?, devices: DeviceSettings) -> DTLSSettings? {
        var settings = DTLSSettings()
        // DTLS is on by default once devices can authenticate.
        settings.listen = devices.isConfigured ? [Self.defaultDTLSListen] : []
        settings.caFile = devices.caFile
        guard let node else { return settings }
        guard let entries = reader.mapping(
            node, what: "coap.dtls",
            allowed: ["listen", "cert_file", "key_file", "max_handshakes", "max_sessions", "idle_timeout"]
        ) else { return nil }
        var ok = true
        if let value = entries["listen"] {
            if let list = listen(value, what: "coap.dtls.listen") { settings.listen = list } else { ok = false }
        }
        let pair = certificatePair(entries, what: "coap.dtls", required: false)
        if let pair {
            settings.certFile = pair.cert
            settings.keyFile = pair.key
        } else if entries["cert_file"] != nil || entries["key_file"] != nil {
            ok = false
        }
        func integer(_ key: String, _ range: ClosedRange<Int>, _ apply: (Int) -> Void) {
            guard let value = entries[key] else { return }
            if let number = reader.int(value, what: "coap.dtls.\(key)", range: range) { apply(number) } else { ok = false }
        }
        integer("max_handshakes", 1...10_000) { settings.maxHandshakes = $0 }
        integer("max_sessions", 1...1_000_000) { settings.maxSessions = $0 }
        if let value = entries["idle_timeout"] {
            if let seconds = reader.duration(value, what: "coap.dtls.idle_timeout"), (10...86_400).contains(seconds) {
                settings.idleTimeout = Int(seconds)
            } else {
                reader.fail("coap.dtls.idle_timeout must be a duration between 10s and 1d", at: value)
                ok = false
            }
        }
        return ok ? settings : nil
    }

    func httpTLS(_ node: Node, devices: DeviceSettings) -> HTTPTLSSettings? {
        guard let entries = reader.mapping(node, what: "http.tls", allowed: ["listen", "cert_file", "key_file"]) else {
            return nil
        }
        var listenAddresses = [Self.defaultHTTPSListen]
        var ok = true
        if let value = entries["listen"] {
            if let list = listen(value, what: "http.tls.listen") { listenAddresses = list } else { ok = false }
        }
        guard let pair = certificatePair(entries, what: "http.tls", required: true), ok else { return nil }
        return HTTPTLSSettings(listen: listenAddresses, certFile: pair.cert, keyFile: pair.key, caFile: devices.caFile)
    }

    /// `cert_file` and `key_file`, both or neither (unless `required`).
    private func certificatePair(_ entries: NodeReader.Entries, what: String, required: Bool) -> (cert: String, key: String)? {
        let certNode = entries["cert_file"], keyNode = entries["key_file"]
        if certNode == nil && keyNode == nil && !required { return nil }
        guard let certNode = entries.required("cert_file", in: what), let keyNode = entries.required("key_file", in: what) else {
            return nil
        }
        let cert = readableFile(certNode, what: "\(what).cert_file")
        let key = privateKeyFile(keyNode, what: "\(what).key_file")
        guard let cert, let key else { return nil }
        return (cert, key)
    }
}

/// Cross-section checks of the security settings: what would make every
/// device request fail, or expose more than the operator likely meant.
struct SecurityChecks {
    let issues: IssueList

    func check(mappings: [MappingRule], devices: DeviceSettings, coap: CoAPSettings, http: HTTPSettings) {
        let deviceMappings = mappings.filter { $0.auth == .device }
        if let first = deviceMappings.first {
            if !devices.isConfigured {
                issues.warn(
                    "mapping '\(first.name)'\(Self.others(deviceMappings.count)) needs an authenticated device (auth: device, the default) but no device registry is configured (devices.files): every such request is refused 4.01 / 401; add devices, or set auth: anonymous where that is meant",
                    at: first.location
                )
            } else if coap.dtls.listen.isEmpty && (http.tls?.listen.isEmpty ?? true) {
                issues.warn(
                    "mapping '\(first.name)'\(Self.others(deviceMappings.count)) needs an authenticated device, but neither coap.dtls nor http.tls listens: devices have nowhere to present credentials",
                    at: first.location
                )
            }
        }
        if let location = devices.caFileLocation, coap.dtls.certFile == nil, !coap.dtls.listen.isEmpty {
            issues.warn(
                "devices.ca_file is set but coap.dtls has no cert_file/key_file: devices with certificates can use HTTPS only (DTLS with certificates needs the gateway's own certificate)",
                at: location
            )
        }
    }

    private static func others(_ count: Int) -> String {
        count > 1 ? " (and \(count - 1) more)" : ""
    }
}
