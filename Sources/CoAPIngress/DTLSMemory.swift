import CCoAP
import Foundation
import GatewayCore
import Glibc

/// C memory libcoap points into while the context lives.
///
/// libcoap 4.3.1 copies the PSK and PKI setup structs into the context, but
/// not what they point to: the default PSK, the PEM buffers and the answer
/// of the identity callback are read again at every handshake. The engine
/// owns one of these, and frees it only after `coap_free_context`.
final class DTLSMemory {
    /// The largest key a device may have; OpenSSL's own limit (PSK_MAX_PSK_LEN) is larger.
    static let maxKeyLength = 256

    /// Where the identity callback puts the key it returns. libcoap copies
    /// it into the session (`coap_session_refresh_psk_key`), and then, after
    /// that copy, still reads the returned pointer to hand the key to
    /// OpenSSL, so it must outlive the callback: it lives here, is
    /// overwritten by the next handshake (one at a time, on the CoAP thread)
    /// and zeroed by `wipeKey()` once the loop is back in charge.
    let keyAnswer: UnsafeMutablePointer<coap_bin_const_t>
    private let keyBytes: UnsafeMutableBufferPointer<UInt8>
    private(set) var keyInUse = false

    /// A default server PSK nobody knows; see `CoAPEngine.configureDTLS`.
    private(set) var unknownKey: UnsafeMutableBufferPointer<UInt8>?

    /// The gateway's certificate and key and the device CA, read once at
    /// start, so that no handshake waits on the disk.
    private(set) var serverCertificate: UnsafeMutableBufferPointer<UInt8>?
    private(set) var serverKey: UnsafeMutableBufferPointer<UInt8>?
    private(set) var deviceCA: UnsafeMutableBufferPointer<UInt8>?

    init() {
        keyAnswer = .allocate(capacity: 1)
        keyAnswer.initialize(to: coap_bin_const_t(length: 0, s: nil))
        keyBytes = .allocate(capacity: Self.maxKeyLength)
        keyBytes.initialize(repeating: 0)
    }

    deinit {
        wipe(keyBytes)
        keyBytes.deallocate()
        keyAnswer.deallocate()
        for buffer in [unknownKey, serverCertificate, serverKey, deviceCA] {
            if let buffer {
                wipe(buffer)
                buffer.deallocate()
            }
        }
    }

    /// Puts `key` where libcoap will read it; nil when it is too long.
    func answer(with key: [UInt8]) -> UnsafePointer<coap_bin_const_t>? {
        guard !key.isEmpty, key.count <= Self.maxKeyLength else { return nil }
        _ = keyBytes.update(fromContentsOf: key)
        keyAnswer.pointee = coap_bin_const_t(length: key.count, s: UnsafePointer(keyBytes.baseAddress))
        keyInUse = true
        return UnsafePointer(keyAnswer)
    }

    /// Zeroes the last key handed to libcoap (it has its own copy by now).
    func wipeKey() {
        wipe(keyBytes)
        keyAnswer.pointee = coap_bin_const_t(length: 0, s: nil)
        keyInUse = false
    }

    /// 32 random bytes that stay put until the context is freed.
    func makeUnknownKey() -> coap_bin_const_t {
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 32)
        var generator = SystemRandomNumberGenerator()
        for index in buffer.indices { buffer[index] = generator.next() }
        unknownKey = buffer
        return coap_bin_const_t(length: buffer.count, s: UnsafePointer(buffer.baseAddress))
    }

    /// Reads the PEM files the PKI setup needs; throws naming the file (never its content).
    func loadPKI(certFile: String, keyFile: String, caFile: String) throws(CoAPServerError) {
        let certificate = try Self.read(certFile, what: "DTLS certificate")
        let key = try Self.read(keyFile, what: "DTLS private key")
        let ca = try Self.read(caFile, what: "device CA")
        // libcoap reports a bad PEM file only when a device's handshake
        // fails; check what can be checked now.
        guard Self.certificates(in: certificate) > 0 else {
            throw .startup(reason: "\(certFile): no PEM certificate")
        }
        guard Self.certificates(in: ca) > 0 else {
            throw .startup(reason: "\(caFile): no PEM certificate")
        }
        guard String(decoding: key, as: UTF8.self).contains("PRIVATE KEY-----") else {
            throw .startup(reason: "\(keyFile): no PEM private key")
        }
        serverCertificate = Self.copy(certificate)
        serverKey = Self.copy(key)
        deviceCA = Self.copy(ca)
    }

    /// The PEM buffers in libcoap's form. The lengths exclude the NUL that
    /// `copy` appends (libcoap accepts either).
    var pemBuffers: coap_pki_key_pem_buf_t? {
        guard let serverCertificate, let serverKey, let deviceCA else { return nil }
        return coap_pki_key_pem_buf_t(
            ca_cert: UnsafePointer(deviceCA.baseAddress), public_cert: UnsafePointer(serverCertificate.baseAddress),
            private_key: UnsafePointer(serverKey.baseAddress),
            ca_cert_len: deviceCA.count - 1, public_cert_len: serverCertificate.count - 1,
            private_key_len: serverKey.count - 1
        )
    }

    private static func read(_ path: String, what: String) throws(CoAPServerError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else {
            throw .startup(reason: "cannot read the \(what) \(path)")
        }
        return Array(data)
    }

    /// How many PEM certificates in `pem` parse as X.509.
    private static func certificates(in pem: [UInt8]) -> Int {
        let text = String(decoding: pem, as: UTF8.self)
        var count = 0
        for block in text.components(separatedBy: "-----BEGIN CERTIFICATE-----").dropFirst() {
            guard let end = block.range(of: "-----END CERTIFICATE-----") else { return 0 }
            let base64 = block[..<end.lowerBound].filter { !$0.isWhitespace }
            guard let der = Data(base64Encoded: String(base64)), PeerCertificate(der: Array(der)) != nil else { return 0 }
            count += 1
        }
        return count
    }

    /// A NUL-terminated copy, as libcoap prefers PEM buffers.
    private static func copy(_ bytes: [UInt8]) -> UnsafeMutableBufferPointer<UInt8> {
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count + 1)
        _ = buffer.initialize(from: bytes + [0])
        return buffer
    }

    private func wipe(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        guard let base = buffer.baseAddress else { return }
        explicit_bzero(base, buffer.count)
    }
}
