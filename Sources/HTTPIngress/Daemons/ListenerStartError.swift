import GatewayCore

/// Why a libmicrohttpd server could not start. One type for both servers;
/// each names itself through `Listener` (`HTTPServerError`,
/// `AdminServerError`).
public enum ListenerStartError<Listener: NamedListener>: Error, Sendable, CustomStringConvertible, Equatable {
    /// A listen address could not be bound (port in use, address not on this
    /// host, no permission, ...); `reason` is the system's error text.
    case bindFailed(address: ListenAddress, reason: String)
    /// The listen host is not an IP literal.
    case invalidAddress(ListenAddress)
    /// `start()` was called again: a server starts once (a failed start counts).
    case alreadyStarted
    /// TLS listeners are configured, but this libmicrohttpd was built without TLS.
    case tlsUnsupported
    /// A certificate, key or CA file could not be read; `reason` is the
    /// system's error text.
    case tlsFileUnreadable(path: String, reason: String)
    /// The TLS files were read but GnuTLS cannot use them (not PEM, a key
    /// that does not match the certificate, a CA file without certificates).
    case tlsCredentialsInvalid(reason: String)

    public var description: String {
        switch self {
        case .bindFailed(let address, let reason):
            return "cannot listen for \(Listener.listensFor) on \(address): \(reason)"
        case .invalidAddress(let address):
            return "cannot listen for \(Listener.listensFor) on \(address): not an IP address"
        case .alreadyStarted:
            return "the \(Listener.listenerName) was already started (or failed to start); it cannot be started again"
        case .tlsUnsupported:
            return "cannot serve \(Listener.listensFor) over TLS: this libmicrohttpd was built without TLS support"
        case .tlsFileUnreadable(let path, let reason):
            return "cannot serve \(Listener.listensFor) over TLS: cannot read \(path): \(reason)"
        case .tlsCredentialsInvalid(let reason):
            return "cannot serve \(Listener.listensFor) over TLS: \(reason)"
        }
    }
}

/// How a server's `ListenerStartError` names it.
public protocol NamedListener {
    /// What it listens for: "cannot listen for HTTP on …".
    static var listensFor: String { get }
    /// The server itself: "the HTTP server was already started …".
    static var listenerName: String { get }
}
