import Foundation
import X509

/// When the certificate at the top of a PEM file expires, for the metric
/// that lets monitoring warn before the upstream refuses the gateway.
public enum CertificateExpiry {
    /// Nil when the file cannot be read or holds no certificate (the
    /// configuration check has said why).
    public static func notAfter(path: String) -> Date? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let first = PEMBlock.all(in: text).first(where: { $0.discriminator == "CERTIFICATE" }),
              let certificate = try? Certificate(pemEncoded: first.text) else { return nil }
        return certificate.notValidAfter
    }
}
