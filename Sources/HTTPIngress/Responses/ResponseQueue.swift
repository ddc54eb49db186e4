internal import CMicroHTTPD

extension HTTPAnswer {
    /// Queues this answer on a connection. Only valid inside the access
    /// handler (MHD checks the thread and the connection's state).
    /// `closeConnection` adds `Connection: close`, so keep-alive clients of a
    /// draining server reconnect elsewhere.
    func queue(on connection: OpaquePointer, closeConnection: Bool) -> MHD_Result {
        if !closeConnection, let shared = SharedResponses.shared.response(for: self) {
            return MHD_queue_response(connection, status, shared.pointer)
        }
        guard let response = makeResponse(closeConnection: closeConnection) else { return .NO }
        // MHD_queue_response takes its own reference; this drops ours.
        defer { MHD_destroy_response(response) }
        return MHD_queue_response(connection, status, response)
    }

    fileprivate func makeResponse(closeConnection: Bool) -> OpaquePointer? {
        var bytes = self.bytes ?? Array(body.utf8)
        let response = bytes.withUnsafeMutableBytes { buffer in
            // MUST_COPY: MHD keeps its own copy, `bytes` dies with this call.
            MHD_create_response_from_buffer(buffer.count, buffer.baseAddress, .RESPMEM_MUST_COPY)
        }
        guard let response else { return nil }
        for header in headers {
            guard MHD_add_response_header(response, header.name, header.value) == .YES else {
                MHD_destroy_response(response)
                return nil
            }
        }
        if closeConnection {
            _ = MHD_add_response_header(response, "Connection", "close")
        }
        return response
    }
}

/// An MHD response built once and never destroyed.
///
/// `@unchecked Sendable`: MHD reference-counts a response under its own
/// mutex and lets one response be queued on any number of connections from
/// any daemon thread; nothing modifies it after it is built.
private struct SharedResponse: @unchecked Sendable {
    let answer: HTTPAnswer
    let pointer: OpaquePointer
}

/// The answers nearly every request gets (202, 200), built once rather than
/// allocated, copied and freed per request.
private struct SharedResponses: Sendable {
    static let shared = SharedResponses()

    let accepted: SharedResponse?
    let delivered: SharedResponse?

    init() {
        func make(_ answer: HTTPAnswer) -> SharedResponse? {
            answer.makeResponse(closeConnection: false).map { SharedResponse(answer: answer, pointer: $0) }
        }
        accepted = make(.accepted)
        delivered = make(.delivered)
    }

    func response(for answer: HTTPAnswer) -> SharedResponse? {
        if let accepted, answer == accepted.answer { return accepted }
        if let delivered, answer == delivered.answer { return delivered }
        return nil
    }
}
