import FuzzTargets

/// libFuzzer's entry point for `coap_request`; the target itself is CoAPRequestTarget.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = CoAPRequestTarget.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
