import Foundation
import Yams

extension SectionParser {
    static let upstreamKeys = [
        "host", "port", "client_id", "keep_alive", "tls", "max_inflight", "profile", "protocol",
        "session_expiry", "publish_rate", "byte_rate", "connections", "username", "password_file",
        "status_topic", "max_subscriptions",
    ]

    /// `name:port` or `[v6]:port`; a bare IPv6 address has several colons and no brackets.
    static func carriesPort(_ host: String) -> Bool {
        if host.hasPrefix("[") { return host.contains("]:") }
        return host.filter { $0 == ":" }.count == 1
    }

    /// AWS IoT Core's keep-alive range, in seconds.
    static let awsKeepAlive = 30...1200
    /// AWS IoT Core's longest client ID, in bytes.
    static let awsMaxClientID = 128

    func upstream(_ node: Node?, gatewayName: String?) -> UpstreamSettings? {
        guard let node, let entries = reader.mapping(node, what: "upstream", allowed: Self.upstreamKeys) else { return nil }
        var ok = true

        var profile = UpstreamProfile.awsIotCore
        if let value = entries["profile"], let text = reader.string(value, what: "upstream.profile") {
            if let chosen = UpstreamProfile(rawValue: text) {
                profile = chosen
            } else {
                reader.fail("upstream.profile must be 'aws-iot-core' or 'generic', got '\(text)'", at: value)
                ok = false
            }
        }
        let aws = profile == .awsIotCore

        var host: String?
        if let value = entries.required("host", in: "upstream") {
            host = reader.string(value, what: "upstream.host")
            if let text = host, text.isEmpty || text.contains(where: { $0 == " " || $0 == "/" }) {
                reader.fail("upstream.host must be a host name or IP address", at: value)
                host = nil
            } else if let text = host, Self.carriesPort(text) {
                reader.fail("upstream.host must not carry a port ('\(text)'): put the port in upstream.port", at: value)
                host = nil
            }
        }
        let port = entries["port"].flatMap { reader.int($0, what: "upstream.port", range: 1...65535) } ?? 8883

        var connections = 1
        if let value = entries["connections"] {
            if let number = reader.int(value, what: "upstream.connections", range: 1...64) { connections = number } else { ok = false }
        }

        var clientID = gatewayName
        let clientIDNode = entries["client_id"]
        if let value = clientIDNode, let text = reader.string(value, what: "upstream.client_id") {
            if let problem = Identifiers.clientIDProblem(text) {
                reader.fail("upstream.client_id \(problem)", at: value)
                ok = false
            } else {
                clientID = text
            }
        }
        if aws, let id = clientID {
            // The longest ID in use carries the connection suffix.
            let longest = connections == 1 ? id : "\(id)-\(connections)"
            // Point at what makes the ID: its own key, else the connection count.
            let at = clientIDNode ?? entries["connections"] ?? entries.owner
            if longest.utf8.count > Self.awsMaxClientID {
                reader.fail("client ID '\(longest)' is \(longest.utf8.count) bytes; AWS IoT Core allows \(Self.awsMaxClientID)", at: at)
                ok = false
            }
            if id.hasPrefix("$") {
                reader.fail("AWS IoT Core does not accept client IDs starting with '$'", at: at)
                ok = false
            }
        }

        var keepAlive = 60
        if let value = entries["keep_alive"] {
            if let number = reader.int(value, what: "upstream.keep_alive", range: 5...65535) {
                keepAlive = number
                if aws && !Self.awsKeepAlive.contains(number) {
                    keepAlive = min(max(number, Self.awsKeepAlive.lowerBound), Self.awsKeepAlive.upperBound)
                    reader.warn("upstream.keep_alive \(number) is outside AWS IoT Core's 30..1200 s; using \(keepAlive)", at: value)
                }
            } else { ok = false }
        }
        let maxInflight = entries["max_inflight"].flatMap { reader.int($0, what: "upstream.max_inflight", range: 1...100) } ?? 20
        // AWS IoT Core allows 50 subscriptions per connection (an adjustable quota).
        let maxSubscriptions = entries["max_subscriptions"].flatMap {
            reader.int($0, what: "upstream.max_subscriptions", range: 1...(profile == .awsIotCore ? 50 : 10_000))
        } ?? 40

        var version = MQTTVersion.mqtt311
        if let value = entries["protocol"], let text = reader.string(value, what: "upstream.protocol") {
            if let chosen = MQTTVersion(rawValue: text) {
                version = chosen
            } else {
                reader.fail("upstream.protocol must be 'mqtt311' or 'mqtt5', got '\(text)'", at: value)
                ok = false
            }
        }
        var sessionExpiry = 3600.0
        if let value = entries["session_expiry"] {
            if let text = reader.string(value, what: "upstream.session_expiry"), let seconds = DurationText.parse(text), seconds <= Double(UInt32.max) {
                sessionExpiry = seconds
                if version != .mqtt5 {
                    reader.warn("upstream.session_expiry applies to protocol mqtt5 only; MQTT 3.1.1 sessions last as long as the broker keeps them", at: value)
                }
            } else {
                reader.fail("upstream.session_expiry must be a duration such as 1h", at: value)
                ok = false
            }
        }

        var publishRate: Double? = aws ? 100 : nil
        if let value = entries["publish_rate"] {
            if let number = rate(value, what: "upstream.publish_rate") { publishRate = number } else { ok = false }
        }
        var byteRate: Int? = aws ? 512 * 1024 : nil
        if let value = entries["byte_rate"] {
            if let text = value.scalar?.string, text == "unlimited" {
                byteRate = nil
            } else if let size = reader.byteSize(value, what: "upstream.byte_rate", range: 1024...(1 << 40)) {
                byteRate = size
            } else { ok = false }
        }

        var username: String?
        if let value = entries["username"] {
            username = reader.string(value, what: "upstream.username")
            if username == nil { ok = false }
        }
        var password: String?
        if let value = entries["password_file"], let text = reader.string(value, what: "upstream.password_file") {
            let path = FilePaths.resolve(text, against: baseDirectory)
            if let contents = try? String(contentsOfFile: path, encoding: .utf8) {
                // A trailing newline from an editor is not part of the password.
                password = contents.hasSuffix("\n") ? String(contents.dropLast()) : contents
                if username == nil {
                    reader.fail("upstream.password_file needs upstream.username", at: value)
                    ok = false
                }
            } else {
                reader.fail("upstream.password_file: cannot read '\(text)'", at: value)
                ok = false
            }
        }

        var statusTopic: String?
        if let value = entries["status_topic"] {
            statusTopic = self.statusTopic(value, gateway: gatewayName, limits: .forProfile(profile))
            if statusTopic == nil { ok = false }
        }

        let tls = entries.required("tls", in: "upstream").flatMap { tlsFiles($0, profile: profile, port: port) }
        guard ok, let host, let clientID, let tls else { return nil }
        var settings = UpstreamSettings(host: host, port: port, clientID: clientID, keepAlive: keepAlive, tls: tls, maxInflight: maxInflight)
        settings.profile = profile
        settings.protocolVersion = version
        settings.sessionExpiry = sessionExpiry
        settings.publishRate = publishRate
        settings.byteRate = byteRate
        settings.connections = connections
        settings.username = username
        settings.password = password
        settings.statusTopic = statusTopic
        settings.maxSubscriptions = maxSubscriptions
        return settings
    }

    /// `upstream.status_topic`: a topic (`{gateway}` allowed, nothing else
    /// variable) that must be publishable under the profile's limits.
    private func statusTopic(_ node: Node, gateway: String?, limits: UpstreamLimits) -> String? {
        guard let text = reader.string(node, what: "upstream.status_topic") else { return nil }
        let template: TopicTemplate
        switch TopicTemplate.parse(text) {
        case .success(let parsed): template = parsed
        case .failure(let error):
            reader.fail("upstream.status_topic: \(error.description)", at: node)
            return nil
        }
        if let other = template.variables.first(where: { $0 != MappingVariables.gateway }) {
            reader.fail("upstream.status_topic may use {gateway} only, not {\(other)}", at: node)
            return nil
        }
        let topic = template.render([MappingVariables.gateway: gateway ?? "x"])
        if let problem = limits.problem(withTopic: topic) {
            reader.fail("upstream.status_topic: \(problem)", at: node)
            return nil
        }
        return topic
    }

    /// Publishes per second: a positive number, or `unlimited`.
    private func rate(_ node: Node, what: String) -> Double?? {
        guard case .scalar(let scalar) = node else {
            reader.fail("\(what) must be a number of publishes per second or 'unlimited'", at: node)
            return nil
        }
        if scalar.string == "unlimited" { return .some(nil) }
        guard let number = Double(scalar.string), number > 0, number.isFinite else {
            reader.fail("\(what) must be a number of publishes per second above 0, or 'unlimited'", at: node)
            return nil
        }
        return .some(number)
    }

    private func tlsFiles(_ node: Node, profile: UpstreamProfile, port: Int) -> TLSFiles? {
        guard let entries = reader.mapping(node, what: "upstream.tls", allowed: ["ca_file", "cert_file", "key_file", "alpn"]) else {
            return nil
        }
        func file(_ key: String) -> String? {
            entries.required(key, in: "upstream.tls").flatMap { readableFile($0, what: "upstream.tls.\(key)") }
        }
        let ca = file("ca_file"), cert = file("cert_file")
        // The private key is the gateway's identity: refuse one any user can read.
        let key = entries.required("key_file", in: "upstream.tls").flatMap { privateKeyFile($0, what: "upstream.tls.key_file") }
        var keyOK = true
        // AWS IoT Core serves MQTT on 443 only to clients that ask for it by ALPN.
        var alpn: String? = profile == .awsIotCore && port == 443 ? "x-amzn-mqtt-ca" : nil
        if let value = entries["alpn"], let text = reader.string(value, what: "upstream.tls.alpn") {
            if text.isEmpty || text.utf8.count > 255 {
                reader.fail("upstream.tls.alpn must be 1 to 255 bytes", at: value)
                keyOK = false
            }
            alpn = text
        }
        guard let ca, let cert, let key, keyOK else { return nil }
        return TLSFiles(caFile: ca, certFile: cert, keyFile: key, alpn: alpn)
    }
}
