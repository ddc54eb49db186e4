import ArgumentParser
import GatewayCore

extension DevicesCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Register a device; generate its pre-shared key and/or token and print them once.",
            discussion: """
                The entry goes to --file, else to the file the first devices.files pattern names, else (for a \
                DIR/*.EXT pattern) to DIR/ID.EXT. The PSK is stored as the hex of its characters' bytes, the token \
                only as its SHA-256: neither is ever shown again. Refused if the id exists already or the registry \
                would become invalid (nothing is changed then).
                """
        )

        @Argument(help: ArgumentHelp(
            "The device's id: its DTLS PSK identity and what mappings see as the device (letters, digits, '-', '_', '.', ':').",
            valueName: "id"
        ))
        var id: String

        @OptionGroup var options: ConfigOption

        @Flag(name: .long, help: "Generate a pre-shared key for CoAP over DTLS (its identity is the id).")
        var psk = false

        @Flag(name: .long, help: "Generate a bearer token for HTTPS.")
        var token = false

        @Option(name: .long, help: ArgumentHelp("Groups the device belongs to, comma-separated (for mappings' allow:).", valueName: "a,b"))
        var groups: String?

        @Option(name: .customLong("cert-sha256"), help: ArgumentHelp(
            "SHA-256 fingerprint of a client certificate the device presents (repeatable; as openssl x509 -fingerprint -sha256 prints it).",
            valueName: "fingerprint"
        ))
        var certSHA256: [String] = []

        @Option(name: .customLong("cert-name"), help: ArgumentHelp(
            "A subject CN or subjectAltName the device's certificate (signed by devices.ca_file) carries.",
            valueName: "name"
        ))
        var certName: String?

        @Option(name: .long, help: ArgumentHelp("The registry file to add the device to (one devices.files matches).", valueName: "path"))
        var file: String?

        var groupList: [String] {
            (groups ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        func validate() throws {
            do {
                _ = try device(pskHex: psk ? "00" : nil, tokenHash: token ? Secrets.tokenHash("x") : nil)
            } catch {
                throw ValidationError(error.description)
            }
        }

        /// The entry to write, checked.
        func device(pskHex: String?, tokenHash: Digest?) throws(RegistryEditError) -> NewDevice {
            var fingerprints: [Digest] = []
            for text in certSHA256 {
                guard let digest = Digest(hex: text) else { throw .invalidFingerprint(text) }
                if !fingerprints.contains(digest) { fingerprints.append(digest) }
            }
            var unique: [String] = []
            for group in groupList where !unique.contains(group) { unique.append(group) }
            let device = NewDevice(
                id: id, groups: unique, pskHex: pskHex, tokenHash: tokenHash,
                certificateFingerprints: fingerprints, certificateName: certName
            )
            try device.validate()
            return device
        }

        func run() throws {
            let target = try DevicesTarget.load(options)
            let key = psk ? Secrets.newPSK() : nil
            let bearer = token ? Secrets.newToken() : nil
            let change = try target.run { () throws(RegistryEditError) in
                let device = try device(pskHex: key.map(NewDevice.pskHex(forKeyText:)), tokenHash: bearer.map(Secrets.tokenHash))
                let path = try RegistryTarget.file(
                    forNewDevice: id, explicit: file.map(RegistryTarget.absolute), patterns: target.store.patterns
                )
                return try target.store.add(device, to: path)
            }
            let hints = ConnectionHints(config: target.config, id: id, groups: groupList)
            var kinds: [String] = []
            if psk { kinds.append("psk") }
            if token { kinds.append("token") }
            if !certSHA256.isEmpty || certName != nil { kinds.append("certificate") }
            let created = change.kind == .created ? " (new file, mode 0600)" : ""
            print("added device '\(id)' (\(kinds.joined(separator: ", "))) at \(DevicesTarget.place(change))\(created)")
            if let key {
                print("")
                print("Pre-shared key for CoAP over DTLS, identity '\(id)'. Shown only now: no command shows it again.")
                print("  PSK='\(key)'")
                for line in hints.psk { print("  " + line) }
            }
            if let bearer {
                print("")
                print("Bearer token for HTTPS. Shown only now: the registry keeps only its SHA-256.")
                print("  TOKEN='\(bearer)'")
                for line in hints.token { print("  " + line) }
            }
            if !certSHA256.isEmpty || certName != nil {
                print("")
                for line in hints.certificate { print(line) }
            }
            if hints.usesPlaceholderHost(psk: psk, token: token) {
                print("")
                print("GATEWAY: this gateway's address as the device reaches it.")
            }
            print("")
            print(DevicesTarget.reloadNote)
        }
    }
}

/// Ready-to-use commands for a new device's credentials, from the
/// configuration: its listeners' ports and a mapping the device may use.
struct ConnectionHints {
    let config: GatewayConfig
    let id: String
    let groups: [String]

    /// Whether the PSK or token hint says GATEWAY for a wildcard listen address.
    func usesPlaceholderHost(psk: Bool, token: Bool) -> Bool {
        let addresses = [psk ? config.coap.dtls.listen.first : nil, token ? config.http.tls?.listen.first : nil]
        return addresses.contains { $0.map { host($0) == "GATEWAY" } ?? false }
    }

    var psk: [String] {
        guard let address = config.coap.dtls.listen.first else {
            return ["(CoAP over DTLS is off: coap.dtls.listen is empty, so the key cannot be used yet)"]
        }
        let (path, method) = example(for: .coap)
        return ["coap-client-openssl -m \(method.rawValue.lowercased()) -u \(id) -k \"$PSK\" -e '21.5' 'coaps://\(host(address)):\(address.port)\(path)'"]
    }

    var token: [String] {
        guard let address = config.http.tls?.listen.first else {
            return ["(HTTPS is off: a token is accepted over HTTPS only; configure http.tls to use it)"]
        }
        let (path, method) = example(for: .http)
        let verb = method == .post ? "" : " -X \(method.rawValue)"
        return [
            "curl --cacert GATEWAY-CA.pem\(verb) -H \"Authorization: Bearer $TOKEN\" -d '21.5' 'https://\(host(address)):\(address.port)\(path)'",
            "(GATEWAY-CA.pem: the CA that signed http.tls.cert_file, or that certificate itself if self-signed)",
        ]
    }

    var certificate: [String] {
        var lines = ["The device authenticates with its client certificate over DTLS or HTTPS."]
        if config.devices.caFile == nil {
            lines.append("warning: devices.ca_file is not set: no client certificate can be verified until it is.")
        }
        return lines
    }

    private func host(_ address: ListenAddress) -> String {
        if address.host == "0.0.0.0" || address.host == "::" { return "GATEWAY" }
        return address.isIPv6 ? "[\(address.host)]" : address.host
    }

    /// The first mapping this device may use over `ingress`, its resource
    /// filled in with the id where it names the device; `/RESOURCE` if none.
    private func example(for ingress: IngressProtocol) -> (String, RequestMethod) {
        let rule = config.mappings.first { rule in
            rule.auth == .device && rule.protocols.contains(ingress)
                && (rule.allow.isEmpty || rule.allow.contains(id) || groups.contains(where: rule.allow.contains))
        }
        guard let rule else { return ("/RESOURCE", .post) }
        let segments = rule.resource.segments.map { segment -> String in
            switch segment {
            case .literal(let text): return text
            case .variable(let name), .rest(let name):
                return name == rule.identity || name == "device" ? id : "<\(name)>"
            }
        }
        let method = rule.methods.contains(.post) ? .post : (rule.methods.first ?? .post)
        return ("/" + segments.joined(separator: "/"), method)
    }
}
