internal import CMicroHTTPD
import GatewayCore

/// One TLS connection's state: what its client certificate proves, worked
/// out at the first request that brings no `Authorization` header and kept
/// for the connection's later requests (verifying the chain costs a
/// signature check; the certificate cannot change within a connection).
///
/// Owner: MHD's socket context holds the +1 from `passRetained` taken when
/// the connection opens; `secureConnectionNotice` releases it when the
/// connection closes (MHD reports both for every connection, also when its
/// daemon stops). Only the daemon thread that owns the connection touches
/// it (MHD runs a connection's callbacks and notices there), so it needs no
/// lock.
final class SecureConnection {
    var certificate: PresentedCredential?
}

/// MHD's connection notice on TLS daemons (`MHD_OPTION_NOTIFY_CONNECTION`).
/// It comes before the TLS handshake, so the certificate is read later.
func secureConnectionNotice(
    cls: UnsafeMutableRawPointer?,
    connection: OpaquePointer?,
    socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    code: MHD_ConnectionNotificationCode
) {
    guard let socketContext else { return }
    switch code {
    case .CONNECTION_NOTIFY_STARTED:
        socketContext.pointee = Unmanaged.passRetained(SecureConnection()).toOpaque()
    case .CONNECTION_NOTIFY_CLOSED:
        guard let stored = socketContext.pointee else { return }
        socketContext.pointee = nil
        Unmanaged<SecureConnection>.fromOpaque(stored).release()
    default:
        break
    }
}
