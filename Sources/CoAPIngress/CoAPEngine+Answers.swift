import CCoAP
import GatewayCore

extension CoAPEngine {
    /// How long a CON request may wait for its commit before it gets an empty
    /// ACK: well under ACK_TIMEOUT (2 s), so clients do not retransmit, and
    /// far above a group commit, so answers normally ride on the ACK.
    static let defaultEmptyAckDelay = 0.5

    /// Puts a request on the books before the pipeline sees it, so an
    /// answer that comes at once still finds its entry; returns its ticket.
    func registerPending(
        session: OpaquePointer, exchange: Exchange, peer: String, address: PeerKey, confirmable: Bool, echo: Block1Option?,
        secure: Bool
    ) -> Int {
        let ticket = nextTicket
        nextTicket += 1
        pending[ticket] = Pending(
            session: coap_session_reference(session), exchange: exchange, peer: peer, address: address, confirmable: confirmable,
            arrivedAt: MonotonicClock.now(), block1Echo: echo, secure: secure
        )
        ticketsByExchange[exchange] = ticket
        return ticket
    }

    /// Takes a request off the books; its session reference is now the caller's.
    func takePending(_ ticket: Int) -> Pending? {
        guard let entry = pending.removeValue(forKey: ticket) else { return nil }
        ticketsByExchange.removeValue(forKey: entry.exchange)
        return entry
    }

    /// Forgets a request answered from the handler itself.
    func discardPending(_ ticket: Int) {
        if let entry = takePending(ticket) { coap_session_release(entry.session) }
    }

    /// Sends a finished request's answer and releases its session: on the
    /// ACK (piggybacked) while the client still waits for one, otherwise as
    /// a separate response of the request's own type.
    func answer(_ entry: Pending, with reply: CoAPReply) {
        defer { coap_session_release(entry.session) }
        guard sessionIsOpen(entry) else {
            if let outcome = reply.outcome { observer.requestAnswered(protocol: .coap, outcome: outcome) }
            logger.debug("coap answer not sent", metadata: ["coap.peer": "\(entry.peer)", "reason": "dtls session closed"])
            return
        }
        let type: coap_pdu_type_t
        let messageID: coap_mid_t
        if entry.confirmable && !entry.emptyAckSent {
            type = COAP_MESSAGE_ACK
            messageID = entry.exchange.messageID
        } else {
            type = entry.confirmable ? COAP_MESSAGE_CON : COAP_MESSAGE_NON
            messageID = coap_mid_t(coap_new_message_id(entry.session))
        }
        guard let pdu = coap_pdu_init(type, iotgw_coap_response_code(reply.code), messageID, coap_session_max_pdu_size(entry.session)) else {
            logger.error("coap answer not sent", metadata: ["reason": "cannot allocate a PDU"])
            return
        }
        entry.exchange.token.withBytes { _ = coap_add_token(pdu, $0.count, $0.baseAddress) }
        if let outcome = reply.outcome { observer.requestAnswered(protocol: .coap, outcome: outcome) }
        CoAPPDU.write(reply, to: pdu)
        if coap_send(entry.session, pdu) == COAP_INVALID_MID {
            logger.warning("coap answer not sent", metadata: ["reason": "libcoap refused to send it"])
        }
    }

    /// An empty ACK for a request whose answer is not ready yet.
    func sendEmptyAck(_ entry: Pending) {
        guard sessionIsOpen(entry), let pdu = coap_pdu_init(COAP_MESSAGE_ACK, COAP_EMPTY_CODE, entry.exchange.messageID, 0) else { return }
        _ = coap_send(entry.session, pdu)
    }

    /// A DTLS session the device closed (or that failed) while its request
    /// waited cannot carry the answer: libcoap 4.3.1 would try to open a
    /// client handshake on it (coap_send_pdu on a session without TLS).
    /// Plain sessions are always open.
    private func sessionIsOpen(_ entry: Pending) -> Bool {
        !entry.secure || coap_session_get_state(entry.session) == COAP_SESSION_STATE_ESTABLISHED
    }

    /// Sends an empty ACK to every CON request that waited `emptyAckDelay`;
    /// returns when the next one falls due, if any waits.
    func sendDueEmptyAcks(now: Double) -> Double? {
        while let ticket = arrivals.first {
            guard var entry = pending[ticket], entry.confirmable, !entry.emptyAckSent else {
                arrivals.removeFirst()
                continue
            }
            let due = entry.arrivedAt + emptyAckDelay
            if due > now { return due }
            sendEmptyAck(entry)
            entry.emptyAckSent = true
            pending[ticket] = entry
            arrivals.removeFirst()
        }
        return nil
    }
}

/// A CoAP token (0 to 8 bytes) as a value, cheap to hash.
struct CoAPToken: Hashable {
    private var packed: UInt64 = 0
    private(set) var count: Int = 0

    init(_ token: coap_bin_const_t) {
        self.init(bytes: UnsafeBufferPointer(start: token.s, count: token.s == nil ? 0 : min(8, token.length)))
    }

    init<Bytes: Collection<UInt8>>(bytes: Bytes) {
        for (index, byte) in bytes.prefix(8).enumerated() { packed |= UInt64(byte) << (8 * UInt64(index)) }
        count = min(8, bytes.count)
    }

    /// The token's bytes, read straight from `packed` (no allocation: this
    /// runs for every answer).
    func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        withUnsafeBytes(of: packed.littleEndian) { raw in
            body(UnsafeBufferPointer(rebasing: raw.bindMemory(to: UInt8.self).prefix(count)))
        }
    }
}
