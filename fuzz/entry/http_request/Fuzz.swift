import FuzzTargets

/// libFuzzer's entry point for `http_request`; the target itself is HTTPRequestTarget.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = HTTPRequestTarget.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
