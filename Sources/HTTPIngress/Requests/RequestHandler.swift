internal import CMicroHTTPD
import Foundation
import GatewayCore
import Logging
import Synchronization

/// The part of the server MHD calls back into: the access handler and the
/// completion notice (MHD's own messages go to the daemons' `DaemonLogSink`).
/// One for the plain and the TLS daemons alike; the TLS ones reach it
/// through `SecureAccess`.
///
/// Owner: `HTTPServer` holds it, and so do its daemons' `DaemonCallbacks`,
/// which MHD reaches through an unretained context pointer (see there).
final class RequestHandler: AccessHandler, CompletionHandler {
    let pipeline: any IngressPipeline
    let logger: Logger
    let observer: any GatewayObserver
    let maxBody: Int
    let pending = PendingRequests()
    /// Set by `stopAccepting()`: answers then ask clients to close.
    let draining = Atomic(false)
    /// Whether the drain step has run; held while it runs (see `drain`).
    let drained = Mutex(false)

    init(pipeline: any IngressPipeline, logger: Logger, observer: any GatewayObserver = NoObserver(), maxBody: Int) {
        self.pipeline = pipeline
        self.logger = logger
        self.observer = observer
        self.maxBody = maxBody
    }

    // MARK: Access handler

    /// The plain daemons' access handler.
    func handle(_ call: AccessCall) -> MHD_Result {
        handle(call, transport: .plain)
    }

    /// One call of MHD's access handler. MHD calls it once with the head,
    /// once per piece of body, once when the body is complete, and once more
    /// after a resume; a queued response ends the calls.
    func handle(_ call: AccessCall, transport: Transport) -> MHD_Result {
        guard let stored = call.slot.pointee else {
            let context = RequestContext(head: readHead(
                connection: call.connection, url: call.url, method: call.method, transport: transport
            ))
            // The +1 belongs to MHD's slot until requestCompleted releases it.
            call.slot.pointee = Unmanaged.passRetained(context).toOpaque()
            if let refusal = context.head.refusal {
                // Before any body is read: MHD then sends no 100-continue
                // and discards whatever body follows.
                return answer(HTTPAnswer(rejection: refusal), context, call.connection)
            }
            return .YES
        }
        let context = Unmanaged<RequestContext>.fromOpaque(stored).takeUnretainedValue()

        if call.uploadSize.pointee > 0 {
            let piece = UnsafeRawBufferPointer(start: call.uploadData, count: call.uploadSize.pointee)
            call.uploadSize.pointee = 0
            // A response cannot be queued mid-body; false closes the connection.
            return context.receive(piece, maxBody: maxBody) ? .YES : .NO
        }

        switch context.phase {
        case .receiving:
            return dispatch(context, call.connection)
        case .tooLarge:
            return answer(HTTPAnswer(rejection: BodyLimit.tooLarge(maxBody)), context, call.connection)
        case .waiting(let rendezvous):
            // Called again after the completion resumed the connection.
            guard let outcome = rendezvous.takeResumedOutcome() else {
                // MHD calls again only after a resume; never leave the
                // request hanging (MHD would call again at once).
                return answer(HTTPAnswer(rejection: .internalError(reason: "request state lost")), context, call.connection)
            }
            return answer(HTTPAnswer(outcome: outcome), context, call.connection)
        case .answered:
            return .YES
        }
    }

    /// The body is complete: hand the request to the pipeline.
    private func dispatch(_ context: RequestContext, _ connection: OpaquePointer) -> MHD_Result {
        let head = context.head
        if pending.isClosed {
            return answer(HTTPAnswer(rejection: Self.shuttingDown), context, connection)
        }
        // A plain daemon ignores credentials by design: sent in clear, they
        // prove nothing.
        let credential = head.transport == .secure ? SecureCredential.read(connection) : .none
        let request = head.request(body: context.body, credential: credential) { name in
            MHD_lookup_connection_value(connection, .GET_ARGUMENT_KIND, name).map { String(cString: $0) }
        }
        context.body = []
        let rendezvous = Rendezvous(connection: ConnectionRef(pointer: connection))
        let admission: IngressAdmission
        do {
            admission = try pipeline.accept(request) { [self] outcome in
                deliver(outcome, to: rendezvous)
            }
        } catch {
            rendezvous.abandon()
            return answer(HTTPAnswer(rejection: head.method.adjusted(error)), context, connection)
        }
        if case .answered(let acceptance) = admission {
            // Known at once (a QoS 0 message queued): no completion follows.
            rendezvous.abandon()
            return answer(HTTPAnswer(outcome: .success(acceptance)), context, connection)
        }
        guard pending.register(rendezvous) else {
            // stop() has given up waiting; whatever the pipeline does now
            // cannot be answered.
            rendezvous.abandon()
            return answer(HTTPAnswer(rejection: Self.shuttingDown), context, connection)
        }
        context.pending = rendezvous
        context.phase = .waiting(rendezvous)
        // The worker must not wait for the commit: suspend, unless the
        // completion already came (then answer now; resuming a connection
        // that was never suspended is undefined in MHD).
        guard let outcome = rendezvous.suspendUnlessCompleted({ MHD_suspend_connection($0.pointer) }) else {
            return .YES
        }
        return answer(HTTPAnswer(outcome: outcome), context, connection)
    }

    /// The pipeline's completion (any thread), or `stop()` giving up on it.
    func deliver(_ outcome: Rendezvous.Outcome, to rendezvous: Rendezvous) {
        guard let connection = rendezvous.complete(outcome) else { return }
        // MHD then calls the access handler again, which queues the answer.
        pending.withResume { MHD_resume_connection(connection.pointer) }
    }

    private func answer(_ answer: HTTPAnswer, _ context: RequestContext, _ connection: OpaquePointer) -> MHD_Result {
        context.phase = .answered
        observer.requestAnswered(protocol: .http, outcome: answer.outcome)
        logger.debug("http request answered", metadata: [
            "http.peer": "\(context.head.peer)",
            "http.method": "\(context.head.method.name)",
            "http.status": "\(answer.status)",
        ])
        let result = answer.queue(on: connection, closeConnection: draining.load(ordering: .relaxed))
        if result != .YES {
            logger.warning("http response could not be queued", metadata: [
                "http.peer": "\(context.head.peer)",
                "http.status": "\(answer.status)",
            ])
        }
        return result
    }

    static let shuttingDown = IngressRejection.unavailable(
        retryAfterSeconds: 5, reason: "gateway is shutting down; retry later"
    )

    // MARK: Request head

    private func readHead(
        connection: OpaquePointer, url: UnsafePointer<CChar>, method: UnsafePointer<CChar>, transport: Transport
    ) -> RequestHead {
        let peer = iotgw_mhd_client_address(connection).map(SocketAddress.describe) ?? "unknown"
        return RequestHead.read(
            method: String(cString: method), target: String(validatingCString: url),
            header: { header(connection, $0) },
            peer: peer, receivedAt: Date(), transport: transport, maxBody: maxBody
        )
    }

    private func header(_ connection: OpaquePointer, _ name: String) -> String? {
        MHD_lookup_connection_value(connection, .HEADER_KIND, name).map { String(cString: $0) }
    }

    // MARK: Completion

    /// MHD is done with a request (answered, aborted or shut down).
    func requestCompleted(slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, termination: MHD_RequestTerminationCode) {
        guard let stored = slot.pointee else { return }
        slot.pointee = nil
        // Balances the passRetained of the first call.
        let context = Unmanaged<RequestContext>.fromOpaque(stored).takeRetainedValue()
        if let rendezvous = context.pending {
            pending.remove(rendezvous)
        }
        if termination != .REQUEST_TERMINATED_COMPLETED_OK {
            logger.debug("http request ended without a complete answer", metadata: [
                "http.peer": "\(context.head.peer)",
                "http.termination": "\(termination.rawValue)",
            ])
        }
    }
}
