/// The registered devices, indexed for the lookups each credential needs.
/// An immutable value: a reload builds a new one and swaps it in whole.
public struct DeviceRegistry: Sendable {
    /// In the order the files list them.
    public let devices: [Device]
    private let byID: [String: Int]
    private let byTokenHash: [Digest: Int]
    private let byFingerprint: [Digest: Int]
    private let byCertificateName: [String: Int]

    public static let empty = DeviceRegistry(validated: [])

    /// `devices` must have unique ids, tokens, fingerprints and certificate
    /// names (the loader checks this; the last one wins otherwise).
    public init(validated devices: [Device]) {
        self.devices = devices
        var byID: [String: Int] = [:], byToken: [Digest: Int] = [:]
        var byFingerprint: [Digest: Int] = [:], byName: [String: Int] = [:]
        for (index, device) in devices.enumerated() {
            byID[device.id] = index
            if let hash = device.tokenHash { byToken[hash] = index }
            for fingerprint in device.certificateFingerprints { byFingerprint[fingerprint] = index }
            if let name = device.certificateName { byName[name] = index }
        }
        self.byID = byID
        self.byTokenHash = byToken
        self.byFingerprint = byFingerprint
        self.byCertificateName = byName
    }

    public var count: Int { devices.count }
    public var isEmpty: Bool { devices.isEmpty }

    public func device(id: String) -> Device? {
        byID[id].map { devices[$0] }
    }

    /// The device whose token hashes to `hash`. (Looked up by the hash: what
    /// the lookup's timing could reveal is a hash, not the token.)
    public func device(tokenHash hash: Digest) -> Device? {
        byTokenHash[hash].map { devices[$0] }
    }

    /// The device a verified certificate belongs to: by pinned fingerprint
    /// first, then by a name it carries.
    public func device(certificate: PeerCertificate) -> Device? {
        if let index = byFingerprint[certificate.fingerprint] { return devices[index] }
        for name in certificate.names {
            if let index = byCertificateName[name] { return devices[index] }
        }
        return nil
    }
}
