import CCoAP
import Foundation
import GatewayCore

extension CoAPEngine {
    /// Handles one request on the CoAP thread. A request that waits for its
    /// commit gets no answer from this call (`CoAPPDU.suppress`): its answer
    /// is sent once the commit finished, piggybacked on the ACK when that
    /// takes less than `emptyAckDelay`, else as a separate response.
    func handle(session: OpaquePointer, request: OpaquePointer, response: OpaquePointer) {
        let exchange = Exchange(
            session: UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(session))),
            messageID: coap_pdu_get_mid(request),
            token: CoAPToken(coap_pdu_get_token(request))
        )
        if let ticket = ticketsByExchange[exchange], let entry = pending[ticket] {
            // A retransmission of a request still waiting for its commit.
            if entry.emptyAckSent { sendEmptyAck(entry) }
            CoAPPDU.suppress(response)
            return
        }
        let remote = coap_session_get_addr_remote(session)
        let peer = remote.map(CoAPAddress.describe) ?? "unknown"
        let address = remote.map(PeerKey.init) ?? PeerKey()
        let confirmable = coap_pdu_get_type(request) == COAP_MESSAGE_CON
        // Plain and DTLS requests from one address never share state: a
        // spoofed plain datagram must not answer for, or add blocks to, a
        // device's authenticated exchange.
        let secure = coap_session_get_proto(session) == COAP_PROTO_DTLS
        if confirmable, !answered.isEmpty,
           let reply = answered.reply(for: .init(peer: address, secure: secure, exchange), now: MonotonicClock.now()) {
            // A retransmission of a request already answered: the same
            // answer again, on this ACK; the message is not taken twice.
            CoAPPDU.write(reply, to: response)
            return
        }
        let fields = CoAPPDU.read(request)
        if fields.path == Self.wellKnownCore, fields.methodCode == 1 {
            return send(discovery(fields, peer: peer, secure: secure, session: session), to: response)
        }
        let reply = admit(fields, peer: peer, address: address, secure: secure, exchange: exchange, confirmable: confirmable, session: session)
        if let reply {
            send(reply, to: response)
        } else {
            CoAPPDU.suppress(response)
        }
    }

    /// Decides the answer now, or returns nil when the request went to the
    /// outbox and will be answered separately.
    private func admit(
        _ fields: CoAPRequestFields, peer: String, address: PeerKey, secure: Bool, exchange: Exchange, confirmable: Bool,
        session: OpaquePointer
    ) -> CoAPReply? {
        guard accepting else {
            return CoAPReply(.unavailable(retryAfterSeconds: 5, reason: "gateway is shutting down; retry later"))
        }
        var ingress: IngressRequest
        let echo: Block1Option?
        switch CoAPRequestAdmission.decide(
            fields, peer: peer, secure: secure, maxBody: settings.maxBody, assembler: &assembler, now: MonotonicClock.now()
        ) {
        case .reply(let reply):
            return reply
        case .request(let request, let last):
            ingress = request
            echo = last
        }
        if secure {
            ingress.credential = secureCredential(session)
        }
        if ingress.method == .get, let option = fields.observe {
            ingress.observe = option
            if let handled = observe(
                ingress, option: option, session: session, exchange: exchange, peer: peer, address: address, secure: secure,
                confirmable: confirmable
            ) {
                return handled.map { withEcho($0, echo) }
            }
        }

        let ticket = registerPending(
            session: session, exchange: exchange, peer: peer, address: address, confirmable: confirmable, echo: echo, secure: secure
        )
        let admission: IngressAdmission
        do {
            admission = try pipeline.accept(ingress) { [weak self] result in
                self?.complete(ticket: ticket, result: result)
            }
        } catch {
            discardPending(ticket)
            return withEcho(CoAPReply(error), echo)
        }
        if case .answered(let acceptance) = admission {
            // Known at once (a QoS 0 message queued): answer piggybacked.
            discardPending(ticket)
            let reply = withEcho(.changed(acceptance), echo)
            if confirmable {
                answered.record(.init(peer: address, secure: secure, exchange), reply, now: MonotonicClock.now())
            }
            return reply
        }
        arrivals.append(ticket)
        return nil
    }

    /// Every final answer goes through here, so metrics see each one once.
    func send(_ reply: CoAPReply, to response: OpaquePointer) {
        if let outcome = reply.outcome { observer.requestAnswered(protocol: .coap, outcome: outcome) }
        CoAPPDU.write(reply, to: response)
    }

    func withEcho(_ reply: CoAPReply, _ echo: Block1Option?) -> CoAPReply {
        CoAPRequestAdmission.withEcho(reply, echo)
    }
}
