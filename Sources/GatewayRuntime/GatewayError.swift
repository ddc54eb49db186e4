/// Why the gateway could not start. Each case names the part that failed so
/// the operator knows where to look.
public enum GatewayError: Error, Sendable, CustomStringConvertible {
    case storage(String)
    /// The outbox (or its directory) is damaged or cannot be written: a
    /// restart would fail the same way, so the service must not loop.
    case unusableState(String)
    case upstream(String)
    case coap(String)
    case http(String)
    case admin(String)

    public var description: String {
        switch self {
        case .storage(let text): return text
        case .unusableState(let text): return text
        case .upstream(let text): return text
        case .coap(let text): return text
        case .http(let text): return text
        case .admin(let text): return text
        }
    }
}
