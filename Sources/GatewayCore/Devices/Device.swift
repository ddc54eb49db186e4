/// One entry of the device registry: who a device is and how it proves it.
///
/// Secrets are held as the handshake needs them (the DTLS pre-shared key) or
/// only as a hash (the HTTP token); nothing here is ever logged.
public struct Device: Sendable, Equatable {
    public var id: String
    public var groups: [String]
    /// A disabled device still authenticates, and is then refused (4.03 / 403).
    public var disabled: Bool
    /// The DTLS pre-shared key, its identity being `id`.
    public var psk: [UInt8]?
    /// SHA-256 of the HTTP bearer token.
    public var tokenHash: Digest?
    /// SHA-256 fingerprints of the DER certificates this device may present.
    public var certificateFingerprints: [Digest]
    /// A subject CN or subjectAltName a certificate under the device CA must carry.
    public var certificateName: String?
    /// Where the entry is written, for diagnostics.
    public var location: SourceLocation

    public init(
        id: String, groups: [String] = [], disabled: Bool = false, psk: [UInt8]? = nil, tokenHash: Digest? = nil,
        certificateFingerprints: [Digest] = [], certificateName: String? = nil, location: SourceLocation
    ) {
        self.id = id
        self.groups = groups
        self.disabled = disabled
        self.psk = psk
        self.tokenHash = tokenHash
        self.certificateFingerprints = certificateFingerprints
        self.certificateName = certificateName
        self.location = location
    }

    /// Whether this device may use a mapping with `allow:`: its id or one of
    /// its groups is listed.
    public func isAllowed(by allow: [String]) -> Bool {
        allow.contains(id) || groups.contains(where: allow.contains)
    }

    /// Whether a certificate (already verified against the device CA) is this device's.
    public func owns(_ certificate: PeerCertificate) -> Bool {
        if certificateFingerprints.contains(certificate.fingerprint) { return true }
        if let name = certificateName { return certificate.names.contains(name) }
        return false
    }

    /// The credential kinds the entry holds, for `devices list`.
    public var credentialKinds: [String] {
        var kinds: [String] = []
        if psk != nil { kinds.append("psk") }
        if tokenHash != nil { kinds.append("token") }
        if !certificateFingerprints.isEmpty || certificateName != nil { kinds.append("certificate") }
        return kinds
    }
}

/// What a device id (and a group name) may be: it is a DTLS PSK identity, a
/// certificate name and a topic level, so it stays within characters every
/// one of those takes as they are.
public enum DeviceID {
    /// libcoap's limit for a PSK identity.
    public static let maxLength = 64

    public static func problem(_ id: String) -> String? {
        guard (1...maxLength).contains(id.utf8.count) else { return "must be 1 to \(maxLength) characters long" }
        let allowed = id.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || $0 == "-" || $0 == "_" || $0 == "." || $0 == ":"
        }
        guard allowed else { return "may contain only letters, digits, '-', '_', '.' and ':'" }
        if id.hasPrefix(".") || id.hasPrefix("-") { return "must not start with '.' or '-'" }
        return nil
    }
}
