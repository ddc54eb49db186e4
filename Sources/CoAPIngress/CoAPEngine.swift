import CCoAP
import DequeModule
import Foundation
import GatewayCore
import Glibc
import Logging

/// Owns the libcoap context and runs its loop on one dedicated thread.
///
/// `@unchecked Sendable`: libcoap is not thread-safe, so everything marked
/// "CoAP thread" below is touched only by the thread `run()` runs on (the
/// context is created in `start()` before that thread exists and freed by it
/// when it ends). Other threads reach the engine only through `completions`,
/// `control` (both `Guarded`) and the eventfd `wake`. libcoap's callbacks
/// (requests, DTLS identities and certificates, events) all run inside its
/// I/O calls, so on the CoAP thread too.
final class CoAPEngine: @unchecked Sendable {
    /// A request waiting for its commit, keyed by ticket. Its session is
    /// referenced until the answer is sent, so the pointer stays valid.
    struct Pending {
        var session: OpaquePointer
        var exchange: Exchange
        var peer: String
        var address: PeerKey
        var confirmable: Bool
        var arrivedAt: Double
        /// An empty ACK went out because the answer took too long: the answer
        /// follows as a separate (CON) response.
        var emptyAckSent = false
        var block1Echo: Block1Option?
        /// Over DTLS: sessions that may have closed before the answer.
        var secure = false
    }

    /// What identifies a request and its retransmissions (RFC 7252 4.5):
    /// the session (one per peer address), the message ID and the token.
    struct Exchange: Hashable {
        var session: UInt
        var messageID: Int32
        var token: CoAPToken
    }

    struct Control: Sendable {
        var accepting = true
        var stopRequested = false
        var deadline = Deadline(seconds: .infinity)
    }

    let settings: CoAPSettings
    let emptyAckDelay: Double
    let handshakeTimeout: Double
    let pipeline: IngressPipeline
    let logger: Logger
    let observer: GatewayObserver
    /// Asked during DTLS handshakes; nil: no DTLS listeners allowed.
    let authority: (any HandshakeAuthority)?
    private let control = Guarded(Control())
    private let thread = WorkerThread(name: "coap")
    /// Finished tickets, posted by the outbox writer's thread.
    let completions = Guarded<[(ticket: Int, result: Result<Acceptance, IngressRejection>)]>([])
    private let wake: EventSignal?

    // CoAP thread only.
    private var context: OpaquePointer?
    var pending: [Int: Pending] = [:]
    var ticketsByExchange: [Exchange: Int] = [:]
    /// Tickets in arrival order, for the empty-ACK deadline.
    var arrivals = Deque<Int>()
    var answered = AnsweredExchanges()
    /// The buffer `completions` is swapped with at each round, kept empty
    /// with its capacity between rounds.
    private var spareCompletions: [(ticket: Int, result: Result<Acceptance, IngressRejection>)] = []
    var nextTicket = 1
    var assembler: Block1Assembler
    var accepting = true
    /// C memory of the DTLS setup; freed only after the context.
    var dtlsMemory: DTLSMemory?
    /// Per DTLS session, keyed by the serial number in its app data.
    var secureSessions: [UInt: SecureSession] = [:]
    var nextSecureSerial: UInt = 1
    /// Serials of sessions whose handshake is under way, with its deadline.
    var handshaking: [UInt: Double] = [:]
    var nextHandshakeCheck = 0.0
    /// Devices observing a resource, and a serial per registration.
    var observers: [ObserverKey: Observer] = [:]
    var nextObserverSerial = 0
    /// Confirmable notifications sent lately, for libcoap's failure reports.
    var sentNotifications: [NotificationKey: SentNotification] = [:]
    /// Observation events posted by the pipeline's threads.
    let observations = Guarded<[ObservationPost]>([])

    init(
        settings: CoAPSettings, pipeline: IngressPipeline, logger: Logger, observer: GatewayObserver,
        authority: (any HandshakeAuthority)? = nil, emptyAckDelay: Double = CoAPEngine.defaultEmptyAckDelay,
        handshakeTimeout: Double = CoAPEngine.defaultHandshakeTimeout
    ) {
        self.settings = settings
        self.emptyAckDelay = emptyAckDelay
        self.handshakeTimeout = handshakeTimeout
        self.pipeline = pipeline
        self.logger = logger
        self.observer = observer
        self.authority = authority
        self.wake = EventSignal()
        self.assembler = Block1Assembler(maxBody: settings.maxBody)
    }

    func start() throws(CoAPServerError) {
        guard let wake else { throw .startup(reason: "cannot create eventfd: \(String(cString: strerror(errno)))") }
        coap_startup()
        CoAPLogBridge.install(logger)
        guard let context = coap_new_context(nil) else {
            throw .startup(reason: "cannot create a libcoap context")
        }
        for listen in settings.listen {
            guard var address = CoAPAddress.make(listen) else {
                coap_free_context(context)
                throw .bind(address: listen.description, reason: "not an IP address")
            }
            errno = 0
            if coap_new_endpoint(context, &address, COAP_PROTO_UDP) == nil {
                let reason = errno != 0 ? String(cString: strerror(errno)) : "bind failed"
                coap_free_context(context)
                throw .bind(address: listen.description, reason: reason)
            }
        }
        // The unknown-resource handler sees every path; routing is ours.
        guard let resource = coap_resource_unknown_init2(coapRequestHandler, 0) else {
            coap_free_context(context)
            throw .startup(reason: "cannot create the catch-all resource")
        }
        for method in [COAP_REQUEST_GET, COAP_REQUEST_POST, COAP_REQUEST_PUT, COAP_REQUEST_DELETE,
                       COAP_REQUEST_FETCH, COAP_REQUEST_PATCH, COAP_REQUEST_IPATCH] {
            coap_register_request_handler(resource, method, coapRequestHandler)
        }
        coap_add_resource(context, resource)
        guard Self.addDiscoveryResource(context, handler: coapRequestHandler) else {
            coap_free_context(context)
            throw .startup(reason: "cannot create the /.well-known/core resource")
        }
        // Notifications that are never acknowledged remove their observer.
        coap_register_nack_handler(context, coapNackHandler)
        // The engine outlives the context: the context is freed by run() and
        // run() holds a strong reference to the engine.
        coap_set_app_data(context, Unmanaged.passUnretained(self).toOpaque())
        if !settings.dtls.listen.isEmpty {
            let memory = DTLSMemory()
            do throws(CoAPServerError) {
                try configureDTLS(context, memory: memory)
            } catch {
                coap_free_context(context)
                throw error
            }
            dtlsMemory = memory
        }
        self.context = context

        thread.start { [self] in run(wake: wake) }
        logger.info("coap listening", metadata: [
            "coap.listen": "\(settings.listen.map(\.description).joined(separator: ","))",
            "coap.dtls.listen": "\(settings.dtls.listen.map(\.description).joined(separator: ","))",
        ])
    }

    func stopAccepting() {
        control.update { $0.accepting = false }
        wake?.signal()
    }

    func stop(timeout: Double) {
        thread.stop {
            control.update {
                $0.accepting = false
                $0.stopRequested = true
                $0.deadline = .after(timeout)
            }
            wake?.signal()
        }
    }

    /// Called on the outbox writer's thread: queue the result and wake the
    /// CoAP thread only if the queue was empty (one syscall per batch).
    func complete(ticket: Int, result: Result<Acceptance, IngressRejection>) {
        let wasEmpty = completions.withLock { queue in
            let empty = queue.isEmpty
            queue.append((ticket, result))
            return empty
        }
        if wasEmpty { wake?.signal() }
    }

    func wakeUp() { wake?.signal() }

    // MARK: - CoAP thread

    private func run(wake: EventSignal) {
        guard let context else { return }
        let coapDescriptor = coap_context_get_coap_fd(context)
        var descriptors = [
            pollfd(fd: coapDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            thread.beat()
            // Drain what is readable, then answer what committed meanwhile.
            var rounds = 0
            while rounds < 512 && iotgw_coap_io_drain_once(context) > 0 {
                rounds += 1
            }
            if let dtlsMemory, dtlsMemory.keyInUse { dtlsMemory.wipeKey() }
            answerCompleted()
            deliverObservations()
            let nextAckDue = sendDueEmptyAcks(now: MonotonicClock.now())
            if !handshaking.isEmpty { expireHandshakes(now: MonotonicClock.now()) }

            let state = control.withLock { $0 }
            accepting = state.accepting
            // Stopping waits for the answers still owed, and for libcoap to
            // have sent them: a separate response to a client that has one
            // unacknowledged CON already waits in libcoap's queue (NSTART 1).
            if state.stopRequested && ((pending.isEmpty && coap_can_exit(context) != 0) || state.deadline.hasPassed) { break }

            descriptors[0].revents = 0
            descriptors[1].revents = 0
            var timeout: Int32 = state.stopRequested ? 50 : 1000
            let timers = iotgw_coap_io_timers(context)
            if timers > 0 { timeout = min(timeout, Int32(clamping: timers)) }
            if let nextAckDue {
                timeout = min(timeout, Int32(max(1, ((nextAckDue - MonotonicClock.now()) * 1000).rounded(.up))))
            }
            _ = thread.idle { poll(&descriptors, 2, timeout) }
            if descriptors[1].revents != 0 { wake.reset() }
        }
        if !pending.isEmpty || coap_can_exit(context) == 0 {
            logger.warning("coap stopped with requests unanswered", metadata: [
                "coap.pending": "\(pending.count)", "coap.unsent": "\(coap_can_exit(context) == 0)",
            ])
        }
        // Their sessions belong to the context: release them before it goes.
        removeAllObservers()
        for entry in pending.values { coap_session_release(entry.session) }
        pending.removeAll()
        ticketsByExchange.removeAll()
        coap_free_context(context)
        self.context = nil
        // Freeing the context deletes its sessions without events.
        secureSessions.removeAll()
        handshaking.removeAll()
        dtlsMemory = nil
    }

    /// Sends the answers of the requests whose commit finished.
    private func answerCompleted() {
        // Swapped, not copied: emptying a copied queue "keeping capacity"
        // allocated a new buffer as large as the largest queue ever was, at
        // every round (with glibc's consolidation, about 2.5 % of this thread).
        var done: [(ticket: Int, result: Result<Acceptance, IngressRejection>)] = []
        swap(&done, &spareCompletions)
        completions.withLock { queue in swap(&queue, &done) }
        defer {
            done.removeAll(keepingCapacity: true)
            spareCompletions = done
        }
        for (ticket, result) in done {
            guard let entry = takePending(ticket) else { continue }
            let reply: CoAPReply
            switch result {
            case .success(let acceptance): reply = .changed(acceptance)
            case .failure(let rejection): reply = CoAPReply(rejection)
            }
            let final = withEcho(reply, entry.block1Echo)
            answer(entry, with: final)
            if entry.confirmable {
                answered.record(AnsweredExchanges.Key(entry), final, now: MonotonicClock.now())
            }
        }
    }
}

/// libcoap's request handler for every method on the catch-all resource.
private let coapRequestHandler: coap_method_handler_t = { _, session, request, _, response in
    guard let session, let request, let response,
          let context = coap_session_get_context(session),
          let engine = coap_get_app_data(context) else { return }
    Unmanaged<CoAPEngine>.fromOpaque(engine).takeUnretainedValue()
        .handle(session: session, request: request, response: response)
}
