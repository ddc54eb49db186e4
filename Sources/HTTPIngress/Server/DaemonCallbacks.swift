#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CMicroHTTPD

// The C entry points MHD calls. Each context pointer is the server's
// `RequestHandler`, passed unretained (see its owner comment).

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
    return Unmanaged<RequestHandler>.fromOpaque(cls).takeUnretainedValue().handle(
        connection: connection, url: url, method: method,
        uploadData: uploadData, uploadSize: uploadSize, slot: slot
    )
}

func completedTrampoline(
    cls: UnsafeMutableRawPointer?,
    connection: OpaquePointer?,
    slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    termination: MHD_RequestTerminationCode
) {
    guard let cls, let slot else { return }
    Unmanaged<RequestHandler>.fromOpaque(cls).takeUnretainedValue()
        .requestCompleted(slot: slot, termination: termination)
}

func logTrampoline(cls: UnsafeMutableRawPointer?, message: UnsafePointer<CChar>?) {
    guard let cls, let message else { return }
    Unmanaged<RequestHandler>.fromOpaque(cls).takeUnretainedValue().daemonLog(String(cString: message))
}

/// Leaves the URL exactly as received: `PathDecoding` splits the path at `/`
/// first and then decodes each segment, whereas MHD's own unescaping would
/// decode the whole path and could yield NUL, `/` and `#`.
func keepEscapes(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, text: UnsafeMutablePointer<CChar>?) -> Int {
    guard let text else { return 0 }
    return strlen(text)
}
