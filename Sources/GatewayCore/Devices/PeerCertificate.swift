import X509

/// The parts of a device's X.509 certificate the registry matches on. The
/// TLS library has already verified it against the device CA before the
/// gateway looks at it; this only says whose it is.
public struct PeerCertificate: Sendable, Hashable {
    /// SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` shows it.
    public var fingerprint: Digest
    /// The subject's common names and the DNS, URI and e-mail subjectAltNames.
    public var names: [String]

    public init(fingerprint: Digest, names: [String]) {
        self.fingerprint = fingerprint
        self.names = names
    }

    /// Parses a DER certificate; nil when it is not one.
    public init?(der: [UInt8]) {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        var names: [String] = []
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                if let text = String(attribute.value) { names.append(text) }
            }
        }
        // A certificate with a malformed SAN extension still has its CN.
        if let alternatives = try? certificate.extensions.subjectAlternativeNames {
            for name in alternatives {
                switch name {
                case .dnsName(let text), .uniformResourceIdentifier(let text), .rfc822Name(let text):
                    names.append(text)
                default:
                    break
                }
            }
        }
        self.init(fingerprint: Digest.sha256(der), names: names)
    }
}
