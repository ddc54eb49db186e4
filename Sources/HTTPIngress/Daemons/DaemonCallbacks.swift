#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CMicroHTTPD
import Synchronization

/// One call of MHD's access handler, its pointers checked for NULL.
struct AccessCall {
    let connection: OpaquePointer
    let url: UnsafePointer<CChar>
    let method: UnsafePointer<CChar>
    /// The piece of body this call delivers, `uploadSize` bytes; the handler
    /// sets `uploadSize` to what it did not consume.
    let uploadData: UnsafePointer<CChar>?
    let uploadSize: UnsafeMutablePointer<Int>
    /// MHD's per-request pointer, ours to set.
    let slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>
}

/// A server's access handler: what it does with a request is what differs
/// between the servers. Runs on a daemon thread.
protocol AccessHandler: Sendable {
    func handle(_ call: AccessCall) -> MHD_Result
}

/// A server that keeps per-request state in MHD's slot and must hear when
/// MHD is done with a request.
protocol CompletionHandler: Sendable {
    /// MHD is done with a request (answered, aborted or shut down).
    func requestCompleted(slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>, termination: MHD_RequestTerminationCode)
}

/// What MHD calls back into for one server's daemons: the context pointer
/// of the access handler and the completion notice.
///
/// Owner: the `DaemonSet` holds it (and it holds the handlers); MHD gets it
/// as an unretained context pointer, which is safe because the set's daemons
/// are all stopped (and with them every callback) before the set releases it.
final class DaemonCallbacks: Sendable {
    let access: any AccessHandler
    /// nil: no completion callback is registered, for a server that
    /// allocates nothing per request.
    let completion: (any CompletionHandler)?
    /// Cleared when the server stops accepting: MHD then closes each new
    /// connection as soon as it is accepted. (Not `MHD_quiesce_daemon`: in
    /// libmicrohttpd 0.9.75 it races the epoll thread, which can abort the
    /// process with "Failed to remove listen FD from epoll set".)
    let accepting = Atomic(true)

    init(access: any AccessHandler, completion: (any CompletionHandler)?) {
        self.access = access
        self.completion = completion
    }

    /// The context pointer MHD passes back to the trampolines below.
    var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
}

// The C entry points MHD calls. Each context pointer is the daemons'
// `DaemonCallbacks` or `DaemonLogSink`, passed unretained (see their owner
// comments).

func acceptPolicyTrampoline(
    cls: UnsafeMutableRawPointer?,
    address: UnsafePointer<sockaddr>?,
    length: socklen_t
) -> MHD_Result {
    guard let cls else { return .NO }
    return Unmanaged<DaemonCallbacks>.fromOpaque(cls).takeUnretainedValue()
        .accepting.load(ordering: .relaxed) ? .YES : .NO
}

func accessTrampoline(
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
    return Unmanaged<DaemonCallbacks>.fromOpaque(cls).takeUnretainedValue().access.handle(AccessCall(
        connection: connection, url: url, method: method,
        uploadData: uploadData, uploadSize: uploadSize, slot: slot
    ))
}

func completedTrampoline(
    cls: UnsafeMutableRawPointer?,
    connection: OpaquePointer?,
    slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    termination: MHD_RequestTerminationCode
) {
    guard let cls, let slot else { return }
    Unmanaged<DaemonCallbacks>.fromOpaque(cls).takeUnretainedValue().completion?
        .requestCompleted(slot: slot, termination: termination)
}

func logTrampoline(cls: UnsafeMutableRawPointer?, message: UnsafePointer<CChar>?) {
    guard let cls, let message else { return }
    Unmanaged<DaemonLogSink>.fromOpaque(cls).takeUnretainedValue().record(String(cString: message))
}

/// Leaves the URL exactly as received: `PathDecoding` splits the path at `/`
/// first and then decodes each segment, whereas MHD's own unescaping would
/// decode the whole path and could yield NUL, `/` and `#`.
func keepEscapes(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, text: UnsafeMutablePointer<CChar>?) -> Int {
    guard let text else { return 0 }
    return strlen(text)
}
