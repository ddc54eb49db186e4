internal import CMicroHTTPD
import Logging

/// The admin server's access handler (MHD's own messages go to the daemons'
/// `DaemonLogSink`).
///
/// Owner: the admin daemons' `DaemonCallbacks`, which MHD reaches through an
/// unretained context pointer (see there).
final class AdminHandler: AccessHandler {
    let respond: @Sendable (AdminRequest) -> AdminResponse
    let logger: Logger

    init(logger: Logger, respond: @escaping @Sendable (AdminRequest) -> AdminResponse) {
        self.logger = logger
        self.respond = respond
    }

    static let allowed = "GET, HEAD"

    /// One call of MHD's access handler. Every request is answered on the
    /// first call, from its head alone: MHD then reads no body (no
    /// 100-continue) and discards or closes on whatever body follows.
    func handle(_ call: AccessCall) -> MHD_Result {
        guard call.slot.pointee == nil else {
            // Already answered; should MHD still pass body data, drop it.
            call.uploadSize.pointee = 0
            return .YES
        }
        call.slot.pointee = Self.answeredMarker

        let methodName = String(cString: call.method)
        let path = String(cString: call.url)
        let response: AdminResponse
        var headers: [(String, String)] = []
        switch methodName {
        case "GET", "HEAD":
            response = respond(AdminRequest(method: methodName, path: path))
        default:
            response = AdminResponse(status: 405, text: "method not allowed; allowed: \(Self.allowed)\n")
            headers.append(("Allow", Self.allowed))
        }
        logger.debug("admin request answered", metadata: [
            "admin.method": "\(methodName.prefix(16))",
            "admin.path": "\(path.prefix(64))",
            "admin.status": "\(response.status)",
        ])
        let result = queue(response, headers: headers, on: call.connection)
        if result != .YES {
            logger.warning("admin response could not be queued", metadata: ["admin.status": "\(response.status)"])
        }
        return result
    }

    /// Marks MHD's per-request slot as answered. Never dereferenced and never
    /// freed, so no completion callback is needed to clean it up.
    private static var answeredMarker: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: 1) }

    /// Only valid inside the access handler (MHD checks the thread).
    private func queue(_ response: AdminResponse, headers: [(String, String)], on connection: OpaquePointer) -> MHD_Result {
        var bytes = response.body
        let answer = bytes.withUnsafeMutableBytes { buffer in
            // MUST_COPY: MHD keeps its own copy, `bytes` dies with this call.
            MHD_create_response_from_buffer(buffer.count, buffer.baseAddress, .RESPMEM_MUST_COPY)
        }
        guard let answer else { return .NO }
        // MHD_queue_response takes its own reference; this drops ours.
        defer { MHD_destroy_response(answer) }
        for (name, value) in [("Content-Type", response.contentType)] + headers {
            guard MHD_add_response_header(answer, name, value) == .YES else { return .NO }
        }
        return MHD_queue_response(connection, UInt32(clamping: response.status), answer)
    }
}
