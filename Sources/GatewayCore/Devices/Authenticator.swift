/// Who sent a request, as far as its credentials tell.
public enum Authentication: Sendable, Equatable {
    /// No credentials (or a plain transport, which carries none).
    case anonymous
    /// Credentials that belong to this registered device (which may be disabled).
    case device(Device)
    /// Credentials that prove nothing: 4.01 / 401 whatever the mapping.
    case failed(reason: String)
}

/// Checks a request's credentials against the registry. Pure: the same
/// registry and credential give the same answer, on any thread.
public struct Authenticator: Sendable {
    public let registry: DeviceRegistry

    public init(registry: DeviceRegistry) {
        self.registry = registry
    }

    public func authenticate(_ credential: PresentedCredential, transport: Transport) -> Authentication {
        // A plain listener carries no credentials: an Authorization header
        // sent in clear text proves nothing and is ignored.
        guard transport == .secure else { return .anonymous }
        switch credential {
        case .none:
            return .anonymous
        case .psk(let identity, let key):
            guard let device = registry.device(id: identity), let current = device.psk else {
                return .failed(reason: "device is not registered for DTLS-PSK")
            }
            // The session was keyed at its handshake; a key rotated since
            // then no longer counts.
            guard Secrets.constantTimeEquals(current, key) else {
                return .failed(reason: "the device's key has changed; start a new DTLS session")
            }
            return .device(device)
        case .certificate(let certificate):
            guard let device = registry.device(certificate: certificate) else {
                return .failed(reason: "the client certificate belongs to no registered device")
            }
            return .device(device)
        case .bearer(let token):
            guard let device = registry.device(tokenHash: Secrets.tokenHash(token)) else {
                return .failed(reason: "invalid token")
            }
            return .device(device)
        case .basic(let id, let token):
            guard let device = registry.device(id: id), let hash = device.tokenHash,
                  hash.constantTimeEquals(Secrets.tokenHash(token)) else {
                return .failed(reason: "invalid device id or token")
            }
            return .device(device)
        case .unusable(let reason):
            return .failed(reason: reason)
        }
    }
}
