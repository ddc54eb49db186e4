#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CMicroHTTPD
import GatewayCore

/// What a TLS daemon is started with: the gateway's certificate and key,
/// and the device CA when client certificates are asked for. Read from the
/// files and checked with GnuTLS once, at start, so a bad file is reported
/// as such rather than as a daemon that would not start (MHD sets up TLS
/// after binding, and leaves no reason behind but a log line).
///
/// Owner: the options of the TLS `DaemonSet`. MHD keeps pointers to the
/// text for each daemon's lifetime, and the set outlives its daemons.
struct TLSMaterial: Sendable {
    let certificate: PEMText
    let key: PEMText
    /// The device CA; nil: MHD asks no client for a certificate.
    let trust: PEMText?

    static func load(_ settings: HTTPTLSSettings) throws(HTTPServerError) -> TLSMaterial {
        guard MHD_is_feature_supported(.FEATURE_TLS) == .YES else { throw .tlsUnsupported }
        let material = TLSMaterial(
            certificate: try read(settings.certFile),
            key: try read(settings.keyFile),
            trust: try settings.caFile.map { path throws(HTTPServerError) in try read(path) }
        )
        try material.check(settings)
        return material
    }

    private static func read(_ path: String) throws(HTTPServerError) -> PEMText {
        switch PEMText.load(path) {
        case .success(let text): return text
        case .failure(let failure): throw .tlsFileUnreadable(path: path, reason: failure.reason)
        }
    }

    /// Loads the files into a scratch GnuTLS credential, as MHD will: the
    /// key must match the certificate, and the CA file must hold at least
    /// one certificate (GnuTLS accepts a file with none, and MHD with it,
    /// which would leave every client certificate unverifiable).
    private func check(_ settings: HTTPTLSSettings) throws(HTTPServerError) {
        var allocated: gnutls_certificate_credentials_t?
        guard gnutls_certificate_allocate_credentials(&allocated) == GNUTLS_E_SUCCESS, let credentials = allocated else {
            throw .tlsCredentialsInvalid(reason: "GnuTLS could not allocate credentials")
        }
        defer { gnutls_certificate_free_credentials(credentials) }

        var certificateDatum = certificate.datum
        var keyDatum = key.datum
        let paired = gnutls_certificate_set_x509_key_mem(credentials, &certificateDatum, &keyDatum, GNUTLS_X509_FMT_PEM)
        guard paired >= 0 else {
            throw .tlsCredentialsInvalid(
                reason: "\(settings.certFile) and \(settings.keyFile) are not a usable PEM certificate and key: \(Self.describe(paired))"
            )
        }
        guard let trust, let caFile = settings.caFile else { return }
        var trustDatum = trust.datum
        let count = gnutls_certificate_set_x509_trust_mem(credentials, &trustDatum, GNUTLS_X509_FMT_PEM)
        guard count >= 0 else {
            throw .tlsCredentialsInvalid(reason: "\(caFile) is not a PEM CA certificate: \(Self.describe(count))")
        }
        guard count > 0 else {
            throw .tlsCredentialsInvalid(reason: "\(caFile) holds no certificate")
        }
    }

    private static func describe(_ code: Int32) -> String {
        gnutls_strerror(code).map { String(cString: $0) } ?? "GnuTLS error \(code)"
    }
}
