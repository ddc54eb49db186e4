import FuzzTargets

/// libFuzzer's entry point for `config_loader`; the target itself is ConfigLoaderTarget.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = ConfigLoaderTarget.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
