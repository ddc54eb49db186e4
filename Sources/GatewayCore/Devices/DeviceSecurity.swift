import Synchronization

/// What a DTLS handshake asks while it runs (on the CoAP thread): answers
/// must be quick and must not block.
public protocol HandshakeAuthority: Sendable {
    /// The pre-shared key of `identity`, or nil to refuse the handshake
    /// (unknown identity, or the source is locked out).
    func preSharedKey(identity: String, source: String) -> [UInt8]?
    /// Whether a certificate, already verified against the device CA,
    /// belongs to a registered device.
    func acceptsCertificate(_ certificate: PeerCertificate, source: String) -> Bool
    /// A handshake from `source` failed (wrong key, refused certificate).
    func handshakeFailed(source: String)
}

/// The running gateway's view of its devices: the current registry (swapped
/// whole on reload) and the failure lockouts. Shared by the ingress
/// adapters' handshakes and the intake.
public final class DeviceSecurity: HandshakeAuthority {
    private let current: Mutex<DeviceRegistry>
    public let failures: FailureTracker

    public init(registry: DeviceRegistry, limit: FailureLimit) {
        current = Mutex(registry)
        failures = FailureTracker(limit: limit)
    }

    public var registry: DeviceRegistry { current.withLock { $0 } }

    /// Takes effect for the next request and the next handshake; sessions
    /// already established are re-checked at each request.
    public func replace(_ registry: DeviceRegistry) {
        current.withLock { $0 = registry }
    }

    public func authenticate(_ request: IngressRequest) -> Authentication {
        if request.transport == .plain || request.credential == .none { return .anonymous }
        return Authenticator(registry: registry).authenticate(request.credential, transport: request.transport)
    }

    /// Seconds the request's source (or the device it claims to be) must
    /// still wait, or nil.
    public func lockout(_ request: IngressRequest, device: String? = nil) -> Double? {
        // The common case, on every request: nothing to look up.
        if failures.isIdle { return nil }
        let now = MonotonicClock.now()
        if let wait = failures.lockout(Self.sourceKey(request.source), now: now) { return wait }
        if let id = device ?? request.credential.claimedIdentity, let wait = failures.lockout(Self.deviceKey(id), now: now) {
            return wait
        }
        return nil
    }

    /// Counts a refusal: against the source when nobody was authenticated,
    /// against the device when it was (a device that keeps trying what it
    /// may not do is paused wherever it connects from).
    public func recordFailure(_ request: IngressRequest, device: String?) {
        let now = MonotonicClock.now()
        if let device {
            failures.recordFailure(Self.deviceKey(device), now: now)
        } else {
            failures.recordFailure(Self.sourceKey(request.source), now: now)
        }
    }

    // MARK: HandshakeAuthority

    public func preSharedKey(identity: String, source: String) -> [UInt8]? {
        if failures.lockout(Self.sourceKey(source), now: MonotonicClock.now()) != nil { return nil }
        guard let key = registry.device(id: identity)?.psk else {
            failures.recordFailure(Self.sourceKey(source), now: MonotonicClock.now())
            return nil
        }
        return key
    }

    public func acceptsCertificate(_ certificate: PeerCertificate, source: String) -> Bool {
        if failures.lockout(Self.sourceKey(source), now: MonotonicClock.now()) != nil { return false }
        guard registry.device(certificate: certificate) != nil else {
            failures.recordFailure(Self.sourceKey(source), now: MonotonicClock.now())
            return false
        }
        return true
    }

    public func handshakeFailed(source: String) {
        failures.recordFailure(Self.sourceKey(source), now: MonotonicClock.now())
    }

    // Sources and devices share one table; the prefixes keep them apart.
    static func sourceKey(_ source: String) -> String { "source " + source }
    static func deviceKey(_ id: String) -> String { "device " + id }
}
