import Foundation
import X509

/// Reads every certificate and key file the configuration names, so that a
/// file the TLS libraries would refuse at connect time (mosquitto, GnuTLS,
/// libcoap's OpenSSL) is reported at load with its YAML line instead.
struct CertificateChecks {
    let issues: IssueList
    /// What "expired" and "30 days left" are measured against.
    let now: Date

    static let warningPeriod: TimeInterval = 30 * 86_400

    func check(_ files: [String: PEMFileReference]) {
        var certificates: [String: Certificate] = [:]
        for (key, file) in files.sorted(by: { $0.key < $1.key }) {
            if key.hasSuffix("ca_file") {
                checkAuthorities(file)
            } else if key.hasSuffix("cert_file"), let leaf = checkCertificate(file) {
                certificates[key] = leaf
            }
        }
        for (key, file) in files.sorted(by: { $0.key < $1.key }) where key.hasSuffix("key_file") {
            let certificateKey = String(key.dropLast("key_file".count)) + "cert_file"
            checkKey(file, certificate: certificates[certificateKey], certificateFile: files[certificateKey])
        }
    }

    // MARK: - Files

    private func documents(_ file: PEMFileReference) -> [PEMBlock]? {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            fail(file, "cannot read '\(file.written)'")
            return nil
        }
        let text = String(decoding: data, as: UTF8.self)
        // `openssl ecparam -genkey` writes the curve's parameters first.
        let documents = PEMBlock.all(in: text).filter { $0.discriminator != "EC PARAMETERS" }
        if documents.isEmpty {
            let hint = text.contains("-----BEGIN") ? "its PEM blocks cannot be read" : "expected PEM text starting with -----BEGIN (a DER file converts with openssl x509 -inform der or openssl pkey -inform der)"
            fail(file, "'\(file.written)' holds nothing in PEM form: \(hint)")
            return nil
        }
        return documents
    }

    /// A CA bundle: certificates only; at least one of them valid now.
    private func checkAuthorities(_ file: PEMFileReference) {
        guard let documents = documents(file) else { return }
        var parsed: [Certificate] = []
        var unreadable = 0
        for document in documents {
            guard document.discriminator == "CERTIFICATE" else {
                fail(file, "'\(file.written)' holds a \(Self.kind(document)) where CA certificates belong; a CA file holds only -----BEGIN CERTIFICATE----- blocks")
                return
            }
            if let certificate = try? Certificate(pemEncoded: document.text) {
                parsed.append(certificate)
            } else {
                unreadable += 1
            }
        }
        guard !parsed.isEmpty else {
            fail(file, "'\(file.written)' holds no valid X.509 certificate (its CERTIFICATE blocks do not parse; an RSA key under 2048 bits is refused too)")
            return
        }
        if unreadable > 0 {
            // A large bundle (the system's) may hold one the TLS library reads and we do not.
            warn(file, "'\(file.written)': \(unreadable) of its \(documents.count) CERTIFICATE blocks do not parse as X.509 certificates; the others are used")
        }
        let valid = parsed.filter { $0.notValidBefore <= now && now <= $0.notValidAfter }
        guard let lastToExpire = valid.max(by: { $0.notValidAfter < $1.notValidAfter }) else {
            fail(file, "'\(file.written)': \(validityProblem(parsed[0], what: "the CA certificate")); no certificate in it is valid now, so no peer can be verified: get a current CA certificate")
            return
        }
        // A bundle (the system's holds some expired roots) works while any of
        // its certificates does: only the last one to expire matters.
        if lastToExpire.notValidAfter.timeIntervalSince(now) < Self.warningPeriod {
            let which = parsed.count == 1 ? "the CA certificate \(Self.subject(lastToExpire))" : "the last of its CA certificates, \(Self.subject(lastToExpire)),"
            warn(file, "'\(file.written)': \(which) expires on \(Self.date(lastToExpire.notValidAfter)), in under 30 days: replace it before then")
        }
    }

    /// A certificate (its chain may follow): the first must be valid now.
    private func checkCertificate(_ file: PEMFileReference) -> Certificate? {
        guard let documents = documents(file), let first = documents.first else { return nil }
        guard first.discriminator == "CERTIFICATE" else {
            let keyHint = first.discriminator.hasSuffix("PRIVATE KEY") ? " (is it the key file? the key goes in key_file)" : ""
            fail(file, "'\(file.written)' holds a \(Self.kind(first)) where a certificate belongs\(keyHint)")
            return nil
        }
        guard let certificate = try? Certificate(pemEncoded: first.text) else {
            fail(file, "'\(file.written)' holds a CERTIFICATE block that is not a valid X.509 certificate (or one with an RSA key under 2048 bits, which AWS IoT Core and the gateway refuse): issue a new one")
            return nil
        }
        for extra in documents.dropFirst() where extra.discriminator != "CERTIFICATE" || (try? Certificate(pemEncoded: extra.text)) == nil {
            fail(file, "'\(file.written)': after the certificate comes a \(Self.kind(extra)) that is not a valid chain certificate; a certificate file holds the certificate and, optionally, the CAs that issued it")
            return nil
        }
        if certificate.notValidBefore > now || certificate.notValidAfter < now {
            fail(file, "'\(file.written)': \(validityProblem(certificate, what: "the certificate")); peers refuse it: issue a new one (and check the clock)")
            return nil
        }
        if certificate.notValidAfter.timeIntervalSince(now) < Self.warningPeriod {
            warn(file, "'\(file.written)': the certificate \(Self.subject(certificate)) expires on \(Self.date(certificate.notValidAfter)), in under 30 days: renew it before then")
        }
        return certificate
    }

    private func checkKey(_ file: PEMFileReference, certificate: Certificate?, certificateFile: PEMFileReference?) {
        guard let documents = documents(file), let first = documents.first else { return }
        switch first.discriminator {
        case "CERTIFICATE":
            fail(file, "'\(file.written)' holds a certificate where the private key belongs (is it the cert_file?)")
            return
        case "ENCRYPTED PRIVATE KEY":
            fail(file, "'\(file.written)' is an encrypted private key and the gateway cannot ask for a passphrase: store it decrypted with mode 600 (openssl pkey -in KEY -out KEY.plain)")
            return
        default:
            break
        }
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: first.text)
        } catch {
            fail(file, "'\(file.written)' holds a \(Self.kind(first)) that is not a private key the gateway can read (RSA of 2048 bits or more, EC P-256/384/521 or Ed25519, in PKCS#8, SEC1 or PKCS#1 PEM)")
            return
        }
        guard let certificate, let certificateFile else { return }
        if key.publicKey != certificate.publicKey {
            fail(file, "'\(file.written)' is not the private key of the certificate in \(certificateFile.key) (\(certificateFile.location.file):\(certificateFile.location.line)): the TLS handshake would fail; name the key that was made with that certificate")
        }
    }

    // MARK: - Text

    private func validityProblem(_ certificate: Certificate, what: String) -> String {
        if certificate.notValidBefore > now {
            return "\(what) \(Self.subject(certificate)) is not valid before \(Self.date(certificate.notValidBefore))"
        }
        return "\(what) \(Self.subject(certificate)) expired on \(Self.date(certificate.notValidAfter))"
    }

    static func subject(_ certificate: Certificate) -> String {
        "'\(certificate.subject)'"
    }

    static func date(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
        return formatter.string(from: date) + " UTC"
    }

    static func kind(_ document: PEMBlock) -> String {
        "\(document.discriminator) block"
    }

    private func fail(_ file: PEMFileReference, _ message: String) {
        issues.add("\(file.key): \(message)", at: file.location)
    }

    private func warn(_ file: PEMFileReference, _ message: String) {
        issues.warn("\(file.key): \(message)", at: file.location)
    }
}
