import FuzzTargets

/// libFuzzer's entry point for `senml`; the target itself is SenMLTarget.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = SenMLTarget.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
