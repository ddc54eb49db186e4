import Foundation
import GatewayCore

/// What the first call of the access handler learns from the request head.
/// `package` for the fuzz targets (see RequestHeadReading.swift).
package struct RequestHead {
    package var method: RoutedMethod
    /// Decoded segments; empty when `refusal` is set.
    package var path: [String]
    package var contentType: String?
    package var peer: String
    package var receivedAt: Date
    /// Which daemon took the request: only a TLS one reads credentials.
    package var transport: Transport = .plain
    /// Set when the request is answered from its head alone (bad path,
    /// body announced too large, unusable framing).
    package var refusal: IngressRejection?
    /// `Content-Length` when given, to size the body buffer once.
    package var expectedLength: Int?
}

/// One request's state between the calls MHD makes to the access handler.
///
/// Owner: MHD's `con_cls` slot holds the +1 from `Unmanaged.passRetained`
/// taken on the first call; `RequestHandler.requestCompleted` releases it
/// exactly once (MHD reports completion for every request the handler saw,
/// also when the client disconnects or the daemon stops). Only the worker
/// thread that owns the connection touches it, so it needs no lock; what
/// other threads share lives in its `Rendezvous`.
final class RequestContext {
    enum Phase {
        case receiving
        /// A chunked body passed the limit; the rest is dropped, then 413.
        case tooLarge(discarded: Int)
        /// Taken by the pipeline; waiting for its completion.
        case waiting(Rendezvous)
        case answered
    }

    let head: RequestHead
    var body: [UInt8] = []
    var phase = Phase.receiving
    /// Registered in `PendingRequests` until MHD reports the request completed.
    var pending: Rendezvous?

    init(head: RequestHead) {
        self.head = head
        if let expected = head.expectedLength {
            body.reserveCapacity(expected)
        }
    }

    /// Takes one piece of the body. Returns false when the connection should
    /// be closed: the client kept sending far past the limit.
    func receive(_ bytes: UnsafeRawBufferPointer, maxBody: Int) -> Bool {
        switch phase {
        case .receiving:
            if body.count + bytes.count > maxBody {
                body = []
                phase = .tooLarge(discarded: bytes.count)
            } else {
                body.append(contentsOf: bytes)
            }
            return true
        case .tooLarge(let discarded):
            let total = discarded + bytes.count
            phase = .tooLarge(discarded: total)
            return total <= BodyLimit.drainAllowance
        case .waiting, .answered:
            // MHD sends no more body once a response is queued or the
            // request is complete; nothing to keep.
            return true
        }
    }
}
