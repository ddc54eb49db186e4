import GatewayCore
import HTTPIngress

/// What the admin listener answers, as a pure function of the request and
/// the gateway's state, so it is tested without a socket. `AdminServer`
/// has already answered every method but GET and HEAD.
///
/// The closures run on the admin listener's thread at each probe or scrape;
/// they must be quick (read counters, not the database).
public struct AdminRoutes: Sendable {
    private let observer: PrometheusObserver
    private let snapshot: @Sendable () -> OutboxSnapshot
    private let readiness: @Sendable () -> Readiness

    /// The text exposition format Prometheus asks for by default.
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    public init(
        observer: PrometheusObserver,
        snapshot: @escaping @Sendable () -> OutboxSnapshot,
        readiness: @escaping @Sendable () -> Readiness
    ) {
        self.observer = observer
        self.snapshot = snapshot
        self.readiness = readiness
    }

    public func respond(_ request: AdminRequest) -> AdminResponse {
        switch request.path {
        case "/healthz":
            // Answering at all is the proof the process is alive.
            return AdminResponse(status: 200, text: "ok\n")
        case "/readyz":
            let state = readiness()
            return AdminResponse(status: state.isReady ? 200 : 503, text: state.report)
        case "/metrics":
            return AdminResponse(
                status: 200, contentType: Self.metricsContentType,
                body: observer.render(snapshot: snapshot())
            )
        default:
            return AdminResponse(status: 404, text: "not found; try /healthz, /readyz or /metrics\n")
        }
    }
}
