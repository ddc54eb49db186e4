import GatewayCore

/// Why the admin listener could not start.
public enum AdminServerError: Error, Sendable, CustomStringConvertible, Equatable {
    /// An address could not be bound; `reason` is the system's error text.
    case bindFailed(address: ListenAddress, reason: String)
    /// The listen host is not an IP literal.
    case invalidAddress(ListenAddress)
    /// `start()` was called again: a server starts once (a failed start counts).
    case alreadyStarted

    public var description: String {
        switch self {
        case .bindFailed(let address, let reason):
            return "cannot listen for admin requests on \(address): \(reason)"
        case .invalidAddress(let address):
            return "cannot listen for admin requests on \(address): not an IP address"
        case .alreadyStarted:
            return "the admin listener was already started (or failed to start); it cannot be started again"
        }
    }
}
