#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CMicroHTTPD
import Foundation
import Logging
import Synchronization

/// The part of the admin server MHD calls back into.
///
/// Owner: `AdminServer` holds it; MHD gets it as an unretained context
/// pointer, which is safe because the server stops every daemon (and with it
/// every callback) before it releases this object.
final class AdminHandler: Sendable {
    let respond: @Sendable (AdminRequest) -> AdminResponse
    let logger: Logger
    /// The last line MHD logged, to explain a daemon that would not start.
    let lastDaemonMessage = Mutex<String?>(nil)

    init(logger: Logger, respond: @escaping @Sendable (AdminRequest) -> AdminResponse) {
        self.logger = logger
        self.respond = respond
    }

    static let allowed = "GET, HEAD"

    /// One call of MHD's access handler. Every request is answered on the
    /// first call, from its head alone: MHD then reads no body (no
    /// 100-continue) and discards or closes on whatever body follows.
    func handle(
        connection: OpaquePointer,
        url: UnsafePointer<CChar>,
        method: UnsafePointer<CChar>,
        uploadSize: UnsafeMutablePointer<Int>,
        slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    ) -> MHD_Result {
        guard slot.pointee == nil else {
            // Already answered; should MHD still pass body data, drop it.
            uploadSize.pointee = 0
            return .YES
        }
        slot.pointee = Self.answeredMarker

        let methodName = String(cString: method)
        let path = String(cString: url)
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
        let result = queue(response, headers: headers, on: connection)
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

    func daemonLog(_ message: String) {
        let text = message.trimmingCharacters(in: .whitespacesAndNewlines)
        lastDaemonMessage.withLock { $0 = text }
        logger.warning("libmicrohttpd reported a problem on the admin listener", metadata: ["admin.log": "\(text)"])
    }
}

// The C entry points of an admin daemon. Each context pointer is the
// server's `AdminHandler`, passed unretained (see its owner comment).

func adminAccessTrampoline(
    cls: UnsafeMutableRawPointer?,
    connection: OpaquePointer?,
    url: UnsafePointer<CChar>?,
    method: UnsafePointer<CChar>?,
    version: UnsafePointer<CChar>?,
    uploadData: UnsafePointer<CChar>?,
    uploadSize: UnsafeMutablePointer<Int>?,
    slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> MHD_Result {
    guard let cls, let connection, let url, let method, let uploadSize, let slot else { return .NO }
    return Unmanaged<AdminHandler>.fromOpaque(cls).takeUnretainedValue().handle(
        connection: connection, url: url, method: method, uploadSize: uploadSize, slot: slot
    )
}

func adminLogTrampoline(cls: UnsafeMutableRawPointer?, message: UnsafePointer<CChar>?) {
    guard let cls, let message else { return }
    Unmanaged<AdminHandler>.fromOpaque(cls).takeUnretainedValue().daemonLog(String(cString: message))
}
