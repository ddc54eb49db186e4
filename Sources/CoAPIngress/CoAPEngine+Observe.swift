import CCoAP
import GatewayCore

/// CoAP Observe (RFC 7641) for resources the pipeline can follow (shadow
/// deltas, commands): the registering GET is answered like any request, with an
/// Observe option; each change then goes out as a confirmable notification
/// on the observer's token. An observer that answers a notification with RST,
/// or acknowledges none of its retransmissions, is removed (section 4.5), as
/// is one that deregisters (Observe: 1).
extension CoAPEngine {
    /// One observer: a session and the token of its registration.
    struct ObserverKey: Hashable {
        var session: UInt
        var token: CoAPToken
    }

    struct Observer {
        /// Referenced until the observer is removed.
        var session: OpaquePointer
        var token: CoAPToken
        var peer: String
        var secure: Bool
        /// Tells apart events of an earlier registration with the same key.
        var serial: Int
        var id: ObservationID?
        /// The ticket of the registration, until it is answered.
        var ticket: Int?
        var sequence: UInt32 = 1
    }

    /// A confirmable notification libcoap may still report as failed.
    struct SentNotification {
        var id: ObservationID
        var key: ObserverKey
        var reply: DeviceReply?
        var sentAt: Double
    }

    /// libcoap reports a failed confirmable message within about 93 s (RFC
    /// 7252's MAX_TRANSMIT_WAIT); what was sent earlier was delivered.
    static let notificationLifetime = 100.0

    /// Handles a GET that carries Observe; nil when the resource cannot be
    /// observed (the request then goes on as a plain one). Registration
    /// answers come later (`.initial`), so this returns `.some(nil)`.
    func observe(
        _ request: IngressRequest, option: UInt32, session: OpaquePointer, exchange: Exchange, peer: String, address: PeerKey,
        secure: Bool, confirmable: Bool
    ) -> CoAPReply?? {
        let key = ObserverKey(session: exchange.session, token: exchange.token)
        // A new registration with the same token replaces the old one;
        // Observe: 1 ends it and is answered as a plain GET.
        removeObserver(key, tellPipeline: true)
        guard option == 0 else { return nil }

        let ticket = registerPending(
            session: session, exchange: exchange, peer: peer, address: address, confirmable: confirmable, echo: nil, secure: secure
        )
        nextObserverSerial += 1
        let serial = nextObserverSerial
        observers[key] = Observer(
            session: coap_session_reference(session), token: exchange.token, peer: peer, secure: secure, serial: serial,
            ticket: ticket
        )
        let id: ObservationID?
        do {
            id = try pipeline.observe(request) { [weak self] event in
                self?.post(key: key, serial: serial, event)
            }
        } catch {
            removeObserver(key, tellPipeline: false)
            discardPending(ticket)
            return .some(CoAPReply(error))
        }
        guard let id else {
            removeObserver(key, tellPipeline: false)
            discardPending(ticket)
            return nil
        }
        observers[key]?.id = id
        if settings.notifyRetransmits != 4 {
            coap_session_set_max_retransmit(session, UInt16(settings.notifyRetransmits))
        }
        arrivals.append(ticket)
        return .some(nil)
    }

    /// From the pipeline's thread: queue it for the CoAP thread.
    func post(key: ObserverKey, serial: Int, _ event: ObservationEvent) {
        let wasEmpty = observations.withLock { queue in
            let empty = queue.isEmpty
            queue.append(ObservationPost(key: key, serial: serial, event: event))
            return empty
        }
        if wasEmpty { wakeUp() }
    }

    /// Sends what the pipeline posted: registration answers, notifications, ends.
    func deliverObservations() {
        var posted: [ObservationPost] = []
        observations.withLock { queue in swap(&queue, &posted) }
        for post in posted {
            guard let observer = observers[post.key], observer.serial == post.serial else { continue }
            switch post.event {
            case .initial(let result):
                answerRegistration(post.key, observer, result)
            case .notification(let reply):
                // Before the registration's answer a notification would be
                // taken for that answer; the GET's document covers it.
                guard observer.ticket == nil else { continue }
                notify(post.key, CoAPReply.changed(.reply(reply)), carrying: reply)
            case .ended(let rejection):
                if observer.ticket != nil {
                    // Not registered yet: the registration's answer says why.
                    answerRegistration(post.key, observer, .failure(rejection))
                } else {
                    // A final error response ends the observation at the client too.
                    notify(post.key, CoAPReply(rejection))
                }
                removeObserver(post.key, tellPipeline: false)
            }
        }
    }

    private func answerRegistration(_ key: ObserverKey, _ observer: Observer, _ result: Result<Acceptance, IngressRejection>) {
        guard let ticket = observer.ticket, let entry = takePending(ticket) else { return }
        observers[key]?.ticket = nil
        var reply: CoAPReply
        switch result {
        case .success(let acceptance):
            reply = .changed(acceptance)
            reply.observe = observer.sequence
            observers[key]?.sequence += 1
        case .failure(let rejection):
            // Not registered: the answer says so by carrying no Observe.
            reply = CoAPReply(rejection)
            removeObserver(key, tellPipeline: true)
        }
        answer(entry, with: reply)
    }

    /// A confirmable notification on the observer's token.
    private func notify(_ key: ObserverKey, _ reply: CoAPReply, carrying content: DeviceReply? = nil) {
        guard var entry = observers[key] else { return }
        guard !entry.secure || coap_session_get_state(entry.session) == COAP_SESSION_STATE_ESTABLISHED else {
            removeObserver(key, tellPipeline: true)
            return
        }
        var notification = reply
        if reply.code / 100 == 2 {
            notification.observe = entry.sequence
            entry.sequence = (entry.sequence + 1) & 0xFF_FFFF
        }
        let messageID = coap_new_message_id(entry.session)
        guard let pdu = coap_pdu_init(
            COAP_MESSAGE_CON, iotgw_coap_response_code(notification.code), coap_mid_t(messageID),
            coap_session_max_pdu_size(entry.session)
        ) else { return }
        entry.token.withBytes { _ = coap_add_token(pdu, $0.count, $0.baseAddress) }
        CoAPPDU.write(notification, to: pdu)
        let sent = coap_send(entry.session, pdu)
        observers[key] = entry
        if sent != COAP_INVALID_MID, let id = entry.id {
            let now = MonotonicClock.now()
            if sentNotifications.count > 4096 {
                sentNotifications = sentNotifications.filter { now - $0.value.sentAt < Self.notificationLifetime }
            }
            sentNotifications[NotificationKey(session: key.session, messageID: sent)] = SentNotification(
                id: id, key: key, reply: content, sentAt: now
            )
        }
    }

    /// libcoap gave up on a confirmable message (no ACK after its
    /// retransmissions) or the peer answered it with RST.
    func undelivered(session: OpaquePointer, messageID: coap_mid_t) {
        let address = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(session)))
        guard let sent = sentNotifications.removeValue(forKey: NotificationKey(session: address, messageID: messageID)) else { return }
        if let observer = observers[sent.key], observer.id == sent.id {
            logger.info("coap observer removed", metadata: [
                "coap.peer": "\(observer.peer)", "reason": "a notification was not acknowledged",
            ])
            removeObserver(sent.key, tellPipeline: false)
        }
        // Also after the observer went: a command it never acknowledged is kept again.
        pipeline.cancel(sent.id, undelivered: sent.reply)
    }

    func removeObserver(_ key: ObserverKey, tellPipeline: Bool) {
        guard let observer = observers.removeValue(forKey: key) else { return }
        if tellPipeline, let id = observer.id { pipeline.cancel(id, undelivered: nil) }
        coap_session_release(observer.session)
    }

    /// Shutdown: every observation ends.
    func removeAllObservers() {
        for key in Array(observers.keys) { removeObserver(key, tellPipeline: true) }
    }
}

/// A notification as libcoap's failure report names it.
struct NotificationKey: Hashable {
    var session: UInt
    var messageID: coap_mid_t
}

/// A pipeline event for an observer, on its way to the CoAP thread.
struct ObservationPost: Sendable {
    var key: CoAPEngine.ObserverKey
    var serial: Int
    var event: ObservationEvent
}

/// libcoap's handler for confirmable messages that failed.
let coapNackHandler: coap_nack_handler_t = { session, _, reason, messageID in
    guard let session, reason == COAP_NACK_TOO_MANY_RETRIES || reason == COAP_NACK_RST,
          let context = coap_session_get_context(session), let engine = coap_get_app_data(context) else { return }
    Unmanaged<CoAPEngine>.fromOpaque(engine).takeUnretainedValue().undelivered(session: session, messageID: messageID)
}
