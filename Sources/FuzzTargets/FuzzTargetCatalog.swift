/// Every fuzz target by the name fuzz/run, the corpus folders and the
/// regression tests use. Each takes the bytes of one input; a finding is a
/// crash (a failed precondition included), a hang or a leak.
package enum FuzzTargetCatalog {
    package static let all: [(name: String, run: @Sendable ([UInt8]) -> Void)] = [
        ("coap_request", { _ = CoAPRequestTarget.run($0) }),
        ("http_request", { _ = HTTPRequestTarget.run($0) }),
        ("config_loader", { _ = ConfigLoaderTarget.run($0) }),
        ("registry_loader", { _ = RegistryLoaderTarget.run($0) }),
        ("senml", { _ = SenMLTarget.run($0) }),
    ]

    package static func named(_ name: String) -> (@Sendable ([UInt8]) -> Void)? {
        all.first { $0.name == name }?.run
    }
}
