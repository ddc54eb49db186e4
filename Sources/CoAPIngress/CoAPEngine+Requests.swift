import CCoAP
import Foundation
import GatewayCore

extension CoAPEngine {
    /// Handles one request on the CoAP thread. Called twice for requests that
    /// wait for a commit: first when the request arrives (register async,
    /// return without a code: libcoap sends an empty ACK for CON), then when
    /// the async entry is triggered (set the code and return: libcoap sends
    /// the separate response and frees the async entry itself).
    func handle(session: OpaquePointer, request: OpaquePointer, response: OpaquePointer) {
        let token = coap_pdu_get_token(request)
        if let async = coap_find_async(session, token) {
            finish(async: async, response: response)
            return
        }
        let peer = coap_session_get_addr_remote(session).map(CoAPAddress.describe) ?? "unknown"
        let fields = CoAPPDU.read(request)
        let reply = admit(fields, peer: peer, session: session, request: request)
        if let reply { send(reply, to: response) }
    }

    /// Decides the answer now, or returns nil when the request went to the
    /// outbox and will be answered separately.
    private func admit(_ fields: CoAPRequestFields, peer: String, session: OpaquePointer, request: OpaquePointer) -> CoAPReply? {
        guard accepting else {
            return CoAPReply(.unavailable(retryAfterSeconds: 5, reason: "gateway is shutting down; retry later"))
        }
        guard let method = CoAPPDU.method(code: fields.methodCode) else {
            return CoAPReply(code: 405, outcome: .methodNotAllowed, diagnostic: "unsupported method code")
        }

        var body = fields.payload
        var echo: Block1Option?
        if let block = fields.block1 {
            let key = Block1Assembler.Key(peer: peer, method: fields.methodCode, path: fields.path)
            switch assembler.receive(block, size1: fields.size1, payload: fields.payload, key: key, now: Date().timeIntervalSince1970) {
            case .needMore(let next):
                return CoAPReply(code: 231, outcome: nil, block1: next)
            case .complete(let whole, let last):
                body = whole
                echo = last
            case .incomplete(let reason):
                return CoAPReply(code: 408, outcome: .badRequest, diagnostic: reason)
            case .tooLarge(let limit):
                return CoAPReply(.payloadTooLarge(limit: limit, reason: "body larger than \(limit) bytes"))
            case .malformed(let reason):
                return CoAPReply(code: 400, outcome: .badRequest, diagnostic: reason)
            }
        } else {
            if let size1 = fields.size1, size1 > settings.maxBody {
                return CoAPReply(.payloadTooLarge(limit: settings.maxBody, reason: "body larger than \(settings.maxBody) bytes"))
            }
            if body.count > settings.maxBody {
                return CoAPReply(.payloadTooLarge(limit: settings.maxBody, reason: "body larger than \(settings.maxBody) bytes"))
            }
        }

        let path: [String]
        switch PathDecoding.coapPath(fields.path) {
        case .success(let decoded): path = decoded
        case .failure(let rejection): return withEcho(CoAPReply(rejection), echo)
        }
        let ingress = IngressRequest(
            ingress: .coap, method: method, path: path,
            contentType: fields.contentFormat.map(ContentFormats.mediaType(for:)),
            payload: body, peer: peer
        )

        // Register first, so a commit that finishes at once still finds its entry.
        guard let async = coap_register_async(session, request, 0) else {
            return CoAPReply(.unavailable(retryAfterSeconds: 1, reason: "request with this token is already in progress"))
        }
        let ticket = nextTicket
        nextTicket += 1
        coap_async_set_app_data(async, UnsafeMutableRawPointer(bitPattern: ticket))
        pending[ticket] = Pending(async: async, block1Echo: echo, result: nil)
        let admission: IngressAdmission
        do {
            admission = try pipeline.accept(ingress) { [weak self] result in
                self?.complete(ticket: ticket, result: result)
            }
        } catch {
            pending.removeValue(forKey: ticket)
            coap_free_async(session, async)
            return withEcho(CoAPReply(error), echo)
        }
        if case .answered(let acceptance) = admission {
            // Known at once (a QoS 0 message queued): answer piggybacked.
            pending.removeValue(forKey: ticket)
            coap_free_async(session, async)
            return withEcho(.changed(acceptance), echo)
        }
        return nil
    }

    /// The second call for a request: its commit finished.
    private func finish(async: OpaquePointer, response: OpaquePointer) {
        let ticket = Int(bitPattern: coap_async_get_app_data(async))
        guard let entry = pending.removeValue(forKey: ticket), let result = entry.result else {
            send(CoAPReply(code: 500, outcome: .internalError, diagnostic: "internal error: lost request state"), to: response)
            return
        }
        switch result {
        case .success(let acceptance):
            send(withEcho(.changed(acceptance), entry.block1Echo), to: response)
        case .failure(let rejection):
            send(withEcho(CoAPReply(rejection), entry.block1Echo), to: response)
        }
    }

    /// Every final answer goes through here, so metrics see each one once.
    private func send(_ reply: CoAPReply, to response: OpaquePointer) {
        if let outcome = reply.outcome { observer.requestAnswered(protocol: .coap, outcome: outcome) }
        CoAPPDU.write(reply, to: response)
    }

    private func withEcho(_ reply: CoAPReply, _ echo: Block1Option?) -> CoAPReply {
        var reply = reply
        reply.block1 = echo
        return reply
    }
}
