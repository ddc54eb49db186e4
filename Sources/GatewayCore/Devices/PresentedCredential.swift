/// What a request brought to prove who sent it, as its ingress adapter saw
/// it. The adapter only extracts; `Authenticator` decides against the
/// current registry, so a device removed or re-keyed while its session lives
/// is refused at its next request.
public enum PresentedCredential: Sendable, Equatable {
    /// Nothing: a plain listener, or a secure one without credentials.
    case none
    /// A DTLS session keyed with a pre-shared key: the identity and the key
    /// the handshake used.
    case psk(identity: String, key: [UInt8])
    /// A client certificate the TLS library verified against the device CA.
    case certificate(PeerCertificate)
    /// `Authorization: Bearer <token>`.
    case bearer(token: String)
    /// `Authorization: Basic` with `id:token`.
    case basic(id: String, token: String)
    /// An `Authorization` header that is none of the above.
    case unusable(reason: String)

    /// The identity the request claims, for throttling and logs; never a secret.
    public var claimedIdentity: String? {
        switch self {
        case .psk(let identity, _): return identity
        case .basic(let id, _): return id
        case .none, .certificate, .bearer, .unusable: return nil
        }
    }
}

/// How the request reached the gateway: only a secure transport carries
/// credentials.
public enum Transport: String, Sendable, Hashable {
    /// CoAP over UDP, HTTP over TCP: no credentials.
    case plain
    /// CoAP over DTLS, HTTP over TLS.
    case secure
}

extension PresentedCredential: CustomStringConvertible, CustomDebugStringConvertible {
    /// Never the secret: an interpolated credential in a log or an error
    /// message shows only its kind and who it claims to be.
    public var description: String {
        switch self {
        case .none: return "none"
        case .psk(let identity, _): return "psk(identity: \(identity))"
        case .certificate(let certificate): return "certificate(sha256: \(certificate.fingerprint.hex))"
        case .bearer: return "bearer"
        case .basic(let id, _): return "basic(id: \(id))"
        case .unusable(let reason): return "unusable(\(reason))"
        }
    }

    public var debugDescription: String { description }
}
