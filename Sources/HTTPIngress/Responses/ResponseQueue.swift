internal import CMicroHTTPD

extension HTTPAnswer {
    /// Queues this answer on a connection. Only valid inside the access
    /// handler (MHD checks the thread and the connection's state).
    /// `closeConnection` adds `Connection: close`, so keep-alive clients of a
    /// draining server reconnect elsewhere.
    func queue(on connection: OpaquePointer, closeConnection: Bool) -> MHD_Result {
        var bytes = Array(body.utf8)
        let response = bytes.withUnsafeMutableBytes { buffer in
            // MUST_COPY: MHD keeps its own copy, `bytes` dies with this call.
            MHD_create_response_from_buffer(buffer.count, buffer.baseAddress, .RESPMEM_MUST_COPY)
        }
        guard let response else { return .NO }
        // MHD_queue_response takes its own reference; this drops ours.
        defer { MHD_destroy_response(response) }
        for header in headers {
            guard MHD_add_response_header(response, header.name, header.value) == .YES else { return .NO }
        }
        if closeConnection {
            _ = MHD_add_response_header(response, "Connection", "close")
        }
        return MHD_queue_response(connection, status, response)
    }
}
