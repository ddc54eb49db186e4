import GatewayCore

/// Why the HTTP ingress could not start.
public enum HTTPServerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A listen address could not be bound (port in use, address not on this
    /// host, no permission, ...); `reason` is the system's error text.
    case bindFailed(address: ListenAddress, reason: String)
    /// The listen host is not an IP literal.
    case invalidAddress(ListenAddress)
    /// `start()` was called again: a server starts once (a failed start counts).
    case alreadyStarted

    public var description: String {
        switch self {
        case .bindFailed(let address, let reason):
            return "cannot listen for HTTP on \(address): \(reason)"
        case .invalidAddress(let address):
            return "cannot listen for HTTP on \(address): not an IP address"
        case .alreadyStarted:
            return "the HTTP server was already started (or failed to start); it cannot be started again"
        }
    }
}
