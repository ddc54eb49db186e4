internal import CMicroHTTPD
import GatewayCore

/// What a request on a TLS daemon presents: its `Authorization` header,
/// else the connection's client certificate. Runs on the connection's
/// daemon thread, inside the access handler.
enum SecureCredential {
    static func read(_ connection: OpaquePointer) -> PresentedCredential {
        if let header = MHD_lookup_connection_value(connection, .HEADER_KIND, "Authorization") {
            return AuthorizationHeader.credential(cString: header)
        }
        guard let stored = iotgw_mhd_socket_context(connection) else {
            // Every TLS daemon registers `secureConnectionNotice`; without
            // its state, work the certificate out for this request alone.
            return certificate(of: connection)
        }
        let state = Unmanaged<SecureConnection>.fromOpaque(stored).takeUnretainedValue()
        if let known = state.certificate { return known }
        let credential = certificate(of: connection)
        state.certificate = credential
        return credential
    }

    /// The client certificate GnuTLS received in the handshake, verified
    /// against the trust MHD gave it (the device CA). MHD asks for one
    /// (`GNUTLS_CERT_REQUEST`) only when a CA is set, and does not make the
    /// handshake fail on a bad one: that is decided here.
    static func certificate(of connection: OpaquePointer) -> PresentedCredential {
        guard let session = iotgw_mhd_tls_session(connection) else { return .none }
        var count: UInt32 = 0
        guard let peers = gnutls_certificate_get_peers(session, &count), count > 0 else { return .none }
        var status: UInt32 = 0
        let verified = gnutls_certificate_verify_peers2(session, &status)
        guard verified == GNUTLS_E_SUCCESS, status == 0 else {
            return .unusable(reason: verified == GNUTLS_E_SUCCESS ? reason(status) : notSigned)
        }
        // The leaf comes first.
        let leaf = peers[0]
        guard let data = leaf.data,
              let certificate = PeerCertificate(der: Array(UnsafeBufferPointer(start: data, count: Int(leaf.size))))
        else {
            return .unusable(reason: "client certificate cannot be parsed")
        }
        return .certificate(certificate)
    }

    static let notSigned = "client certificate is not signed by the device CA"

    /// What to tell a device whose certificate did not verify.
    static func reason(_ status: UInt32) -> String {
        let signer = GNUTLS_CERT_SIGNER_NOT_FOUND.rawValue | GNUTLS_CERT_SIGNER_NOT_CA.rawValue
            | GNUTLS_CERT_SIGNATURE_FAILURE.rawValue
        if status & signer != 0 { return notSigned }
        if status & GNUTLS_CERT_EXPIRED.rawValue != 0 { return "client certificate has expired" }
        if status & GNUTLS_CERT_NOT_ACTIVATED.rawValue != 0 { return "client certificate is not yet valid" }
        return "client certificate does not verify against the device CA"
    }
}
