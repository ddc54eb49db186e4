import FuzzTargets

/// libFuzzer's entry point for `registry_loader`; the target itself is RegistryLoaderTarget.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = RegistryLoaderTarget.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
