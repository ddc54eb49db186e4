import GatewayCore
import Logging

/// Why the CoAP server could not start.
public enum CoAPServerError: Error, Sendable, CustomStringConvertible {
    case startup(reason: String)
    case bind(address: String, reason: String)

    public var description: String {
        switch self {
        case .startup(let reason): return "CoAP server: \(reason)"
        case .bind(let address, let reason): return "CoAP server cannot listen on \(address): \(reason)"
        }
    }
}

/// CoAP over UDP, and over DTLS, on libcoap 4.3.1. One thread owns the libcoap context and
/// runs its I/O loop; it never waits on disk or network. Requests that wait
/// for their commit are answered from that same thread once it finished:
/// on the ACK (piggybacked), or after an empty ACK when it took over 0.5 s.
public final class CoAPServer: Sendable {
    private let engine: CoAPEngine

    /// `authority` answers DTLS handshakes; DTLS listeners (`settings.dtls.listen`) need one.
    public init(
        settings: CoAPSettings, pipeline: IngressPipeline, logger: Logger, observer: GatewayObserver = NoObserver(),
        authority: (any HandshakeAuthority)? = nil
    ) {
        engine = CoAPEngine(settings: settings, pipeline: pipeline, logger: logger, observer: observer, authority: authority)
    }

    /// For tests: another wait before a CON gets an empty ACK, another
    /// deadline for DTLS handshakes.
    init(
        settings: CoAPSettings, pipeline: IngressPipeline, logger: Logger, authority: (any HandshakeAuthority)? = nil,
        emptyAckDelay: Double, handshakeTimeout: Double = CoAPEngine.defaultHandshakeTimeout
    ) {
        engine = CoAPEngine(
            settings: settings, pipeline: pipeline, logger: logger, observer: NoObserver(), authority: authority,
            emptyAckDelay: emptyAckDelay, handshakeTimeout: handshakeTimeout
        )
    }

    /// Binds every listen address (plain and DTLS) and starts the CoAP thread.
    public func start() throws(CoAPServerError) {
        try engine.start()
    }

    /// From now on new requests are answered 5.03; those waiting for their
    /// commit still get their answer.
    public func stopAccepting() {
        engine.stopAccepting()
    }

    /// Waits (up to `timeout` seconds) for outstanding answers, then closes the sockets.
    public func stop(timeout: Double = 5) {
        engine.stop(timeout: timeout)
    }
}
