import CCoAP
import GatewayCore
import Glibc

/// CoAP over DTLS (libcoap 4.3.1 on OpenSSL): the handshake asks the
/// `HandshakeAuthority` for a device's key or whether its certificate
/// belongs to a device, and each request carries what its session proved.
///
/// Every callback here (identity, certificate, events) runs inside
/// `coap_io_do_epoll` or `coap_io_prepare_epoll`, so on the CoAP thread:
/// `secureSessions` needs no lock.
extension CoAPEngine {
    /// What the engine remembers of one DTLS session, from its first
    /// credential until libcoap deletes it. The session's app data holds
    /// only the record's serial number, never a retained object, so
    /// libcoap freeing a session can leak nothing; the record goes on
    /// `COAP_EVENT_SERVER_SESSION_DEL`, or with the context in `run()`.
    struct SecureSession {
        var source: String
        /// The device certificate the authority accepted.
        var certificate: PeerCertificate?
        var connected = false
        /// The authority refused the credential, and counted that itself.
        var refused = false
        /// `handshakeFailed` was called for this session.
        var reported = false
    }

    /// How long a handshake may take from the device's credential to its
    /// end. A wrong PSK raises no alert (DTLS drops records it cannot
    /// decrypt), and libcoap gives such a handshake up only after its
    /// retransmissions (31 to 63 s), or, when OpenSSL has stopped its timer,
    /// at the idle timeout: the engine counts the failure itself. 30 s is
    /// libcoap's own COAP_PARTIAL_SESSION_TIMEOUT.
    static let defaultHandshakeTimeout = 30.0

    /// Sets up PSK, X.509, the session limits and the DTLS endpoints. Called
    /// from `start()` before the CoAP thread exists.
    func configureDTLS(_ context: OpaquePointer, memory: DTLSMemory) throws(CoAPServerError) {
        let dtls = settings.dtls
        guard coap_dtls_is_supported() != 0 else {
            throw .startup(reason: "DTLS listeners are configured, but this libcoap has no DTLS support")
        }
        guard authority != nil else {
            throw .startup(reason: "DTLS listeners are configured, but no device registry was given")
        }
        let engine = Unmanaged.passUnretained(self).toOpaque()
        let pkiFiles = dtls.certFile.flatMap { cert in
            dtls.keyFile.flatMap { key in dtls.caFile.map { (cert: cert, key: key, ca: $0) } }
        }

        // PSK: the identity callback returns the device's key (nil refuses).
        var psk = coap_dtls_spsk_t()
        psk.version = UInt8(COAP_DTLS_SPSK_SETUP_VERSION)
        psk.validate_id_call_back = validatePSKIdentity
        psk.id_call_back_arg = engine
        if pkiFiles != nil {
            // With PKI also set up, libcoap's ClientHello callback
            // (tls_client_hello_call_back in coap_openssl.c) takes the PSK
            // path only when a session or context PSK is set
            // (`psk_requested`), else it answers a PSK client with the PKI
            // setup and the handshake fails. So the context gets a default
            // key: 32 random bytes nobody knows. It is never used as a key:
            // with validate_id_call_back set, coap_dtls_psk_server_callback
            // takes the key from the callback only, and a nil answer refuses.
            psk.psk_info.key = memory.makeUnknownKey()
        }
        guard coap_context_set_psk2(context, &psk) != 0 else {
            throw .startup(reason: "libcoap refused the DTLS PSK setup")
        }

        // X.509: only with the gateway's certificate and key and the device CA.
        if let files = pkiFiles {
            try memory.loadPKI(certFile: files.cert, keyFile: files.key, caFile: files.ca)
            guard let buffers = memory.pemBuffers else { throw .startup(reason: "DTLS certificates not loaded") }
            var pki = coap_dtls_pki_t()
            pki.version = UInt8(COAP_DTLS_PKI_SETUP_VERSION)
            pki.verify_peer_cert = 1  // also SSL_VERIFY_FAIL_IF_NO_PEER_CERT: a certificate is required (4.3.1 has no require_peer_cert)
            pki.check_common_ca = 1
            pki.allow_self_signed = 0
            pki.allow_expired_certs = 0
            pki.cert_chain_validation = 1
            pki.cert_chain_verify_depth = 3
            pki.validate_cn_call_back = validateCertificate
            pki.cn_call_back_arg = engine
            // PEM buffers, not PEM files: with OpenSSL >= 1.1.1, libcoap 4.3.1
            // loads the PKI setup per handshake (setup_pki_ssl from its
            // ClientHello callback), so files would be read from disk on the
            // CoAP thread at every handshake, and a bad file would show only then.
            pki.pki_key.key_type = COAP_PKI_KEY_PEM_BUF
            pki.pki_key.key.pem_buf = buffers
            guard coap_context_set_pki(context, &pki) != 0 else {
                throw .startup(reason: "libcoap refused the DTLS certificate setup")
            }
        }

        // Bounds on what a handshake flood can hold. DTLS cookies need no
        // setting: libcoap's OpenSSL context always installs HMAC-SHA256
        // cookie callbacks (random secret, peer and local address) and runs
        // each new peer's datagrams through DTLSv1_listen (coap_dtls_hello),
        // which answers HelloVerifyRequest and keeps no state; only a
        // ClientHello that returns a valid cookie gets an SSL object. Before
        // that a peer costs one bare "hello" session, and those count
        // against max_handshake_sessions (coap_endpoint_get_session).
        // These three are context-wide, so they bound plain sessions too.
        coap_context_set_max_handshake_sessions(context, UInt32(clamping: dtls.maxHandshakes))
        coap_context_set_max_idle_sessions(context, UInt32(clamping: dtls.maxSessions))
        coap_context_set_session_timeout(context, UInt32(clamping: dtls.idleTimeout))
        coap_register_event_handler(context, dtlsEventHandler)

        for listen in dtls.listen {
            guard var address = CoAPAddress.make(listen) else {
                throw .bind(address: listen.description, reason: "not an IP address")
            }
            errno = 0
            if coap_new_endpoint(context, &address, COAP_PROTO_DTLS) == nil {
                let reason = errno != 0 ? String(cString: strerror(errno)) : "bind failed"
                throw .bind(address: listen.description, reason: reason)
            }
        }
    }

    /// Transport and credential of a request on a DTLS session.
    func secureCredential(_ session: OpaquePointer) -> PresentedCredential {
        if let serial = coap_session_get_app_data(session),
           let certificate = secureSessions[UInt(bitPattern: serial)]?.certificate {
            return .certificate(certificate)
        }
        if let key = coap_session_get_psk_key(session), let keyBytes = key.pointee.s, key.pointee.length > 0,
           let identity = coap_session_get_psk_identity(session), let identityBytes = identity.pointee.s,
           identity.pointee.length > 0 {
            return .psk(
                identity: String(decoding: UnsafeBufferPointer(start: identityBytes, count: identity.pointee.length), as: UTF8.self),
                key: Array(UnsafeBufferPointer(start: keyBytes, count: key.pointee.length))
            )
        }
        return .none
    }

    /// The device's key for `identity`, or nil to refuse the handshake.
    func preSharedKey(identity: coap_bin_const_t, session: OpaquePointer) -> UnsafePointer<coap_bin_const_t>? {
        guard let authority, let memory = dtlsMemory else { return nil }
        let serial = secureSerial(session)
        guard let source = secureSessions[serial]?.source else { return nil }
        // A renegotiation replaces what the session proved before.
        secureSessions[serial]?.certificate = nil
        // Identities are device IDs: UTF-8. Anything else is refused before
        // it could match another ID after a lossy conversion.
        guard let bytes = identity.s, identity.length > 0,
              let name = String(validating: UnsafeBufferPointer(start: bytes, count: identity.length), as: UTF8.self) else {
            logger.info("dtls handshake refused", metadata: ["coap.peer": "\(source)", "reason": "identity is not UTF-8"])
            return nil
        }
        guard let key = authority.preSharedKey(identity: name, source: source) else {
            secureSessions[serial]?.refused = true
            handshaking.removeValue(forKey: serial)
            logger.info("dtls handshake refused", metadata: ["coap.peer": "\(source)", "device.id": "\(name.prefix(128))", "reason": "unknown identity or locked out"])
            return nil
        }
        guard let answer = memory.answer(with: key) else {
            logger.error("dtls handshake refused", metadata: ["coap.peer": "\(source)", "device.id": "\(name.prefix(128))", "reason": "key empty or longer than 256 bytes"])
            return nil
        }
        return answer
    }

    /// Whether the verified client certificate (depth 0) belongs to a device.
    func acceptsCertificate(der: UnsafeBufferPointer<UInt8>, session: OpaquePointer) -> Bool {
        guard let authority else { return false }
        let serial = secureSerial(session)
        guard let source = secureSessions[serial]?.source else { return false }
        secureSessions[serial]?.certificate = nil
        guard let certificate = PeerCertificate(der: Array(der)) else {
            logger.info("dtls handshake refused", metadata: ["coap.peer": "\(source)", "reason": "certificate does not parse"])
            return false
        }
        guard authority.acceptsCertificate(certificate, source: source) else {
            secureSessions[serial]?.refused = true
            handshaking.removeValue(forKey: serial)
            logger.info("dtls handshake refused", metadata: [
                "coap.peer": "\(source)", "tls.fingerprint": "\(certificate.fingerprint.hex)", "reason": "certificate of no device",
            ])
            return false
        }
        secureSessions[serial]?.certificate = certificate
        return true
    }

    /// libcoap's events for DTLS sessions: established, failed, deleted.
    func dtlsEvent(_ event: coap_event_t, session: OpaquePointer) {
        guard coap_session_get_proto(session) == COAP_PROTO_DTLS else { return }
        let serial = coap_session_get_app_data(session).map { UInt(bitPattern: $0) }
        switch event {
        case COAP_EVENT_DTLS_CONNECTED:
            guard let serial else { return }
            secureSessions[serial]?.connected = true
            handshaking.removeValue(forKey: serial)
            if logger.logLevel <= .debug, let record = secureSessions[serial] {
                logger.debug("dtls session established", metadata: ["coap.peer": "\(record.source)"])
            }
        case COAP_EVENT_DTLS_ERROR:
            // A fatal alert, sent or received: no shared cipher, a certificate
            // OpenSSL could not verify, a refused identity or certificate.
            guard let serial else {
                reportFailedHandshake(source: Self.source(of: session), reason: "alert")
                return
            }
            guard let record = secureSessions[serial], !record.connected, !record.refused, !record.reported else { return }
            secureSessions[serial]?.reported = true
            handshaking.removeValue(forKey: serial)
            reportFailedHandshake(source: record.source, reason: "alert")
        case COAP_EVENT_SERVER_SESSION_DEL:
            guard let serial, let record = secureSessions.removeValue(forKey: serial) else { return }
            handshaking.removeValue(forKey: serial)
            coap_session_set_app_data(session, nil)
            // A session that presented a credential and never connected
            // (libcoap gave it up before the deadline) failed its handshake.
            if !record.connected && !record.refused && !record.reported {
                reportFailedHandshake(source: record.source, reason: "not completed")
            }
        default:
            break
        }
    }

    /// Counts the handshakes that passed their deadline as failed. Called
    /// by the loop while any handshake is under way; looks at most once a
    /// second (the loop wakes at least that often).
    func expireHandshakes(now: Double) {
        guard now >= nextHandshakeCheck else { return }
        nextHandshakeCheck = now + 1
        for (serial, deadline) in handshaking where deadline <= now {
            handshaking.removeValue(forKey: serial)
            guard let record = secureSessions[serial], !record.connected, !record.refused, !record.reported else { continue }
            secureSessions[serial]?.reported = true
            reportFailedHandshake(source: record.source, reason: "not completed in time")
        }
    }

    private func reportFailedHandshake(source: String, reason: String) {
        logger.info("dtls handshake failed", metadata: ["coap.peer": "\(source)", "reason": "\(reason)"])
        authority?.handshakeFailed(source: source)
    }

    /// The session's record serial, creating the record on first use.
    private func secureSerial(_ session: OpaquePointer) -> UInt {
        if let existing = coap_session_get_app_data(session) {
            let serial = UInt(bitPattern: existing)
            if secureSessions[serial] != nil { return serial }
        }
        let serial = nextSecureSerial
        nextSecureSerial += 1
        secureSessions[serial] = SecureSession(source: Self.source(of: session))
        handshaking[serial] = MonotonicClock.now() + handshakeTimeout
        coap_session_set_app_data(session, UnsafeMutableRawPointer(bitPattern: serial))
        return serial
    }

    /// The peer's address without its port, as lockouts key it.
    static func source(of session: OpaquePointer) -> String {
        guard let address = coap_session_get_addr_remote(session) else { return "unknown" }
        return PeerAddress.host(of: CoAPAddress.describe(address))
    }
}

/// `coap_dtls_spsk_t.validate_id_call_back`; `arg` is the engine, which
/// outlives the context.
private let validatePSKIdentity: coap_dtls_id_callback_t = { identity, session, arg in
    guard let identity, let session, let arg else { return nil }
    return Unmanaged<CoAPEngine>.fromOpaque(arg).takeUnretainedValue()
        .preSharedKey(identity: identity.pointee, session: session)
}

/// `coap_dtls_pki_t.validate_cn_call_back`. libcoap calls it (from OpenSSL's
/// verify callback) only for certificates OpenSSL verified, from the CA
/// (depth > 0) down to the client's own (depth 0): only the latter needs
/// the registry.
private let validateCertificate: coap_dtls_cn_callback_t = { _, der, length, session, depth, validated, arg in
    guard depth == 0 else { return 1 }
    guard validated != 0, let der, let session, let arg else { return 0 }
    let accepted = Unmanaged<CoAPEngine>.fromOpaque(arg).takeUnretainedValue()
        .acceptsCertificate(der: UnsafeBufferPointer(start: der, count: length), session: session)
    return accepted ? 1 : 0
}

/// libcoap's event handler (registered only when DTLS is on).
private let dtlsEventHandler: coap_event_handler_t = { session, event in
    guard let session, let context = coap_session_get_context(session),
          let engine = coap_get_app_data(context) else { return 0 }
    Unmanaged<CoAPEngine>.fromOpaque(engine).takeUnretainedValue().dtlsEvent(event, session: session)
    return 0
}
