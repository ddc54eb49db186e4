// swift-tools-version:6.0
import PackageDescription
import Foundation

/// The commit compiled into `iot-gateway --version`: packaging/build-deb sets
/// IOTGW_COMMIT to `git rev-parse --short HEAD` (plus "-dirty" for a tree with
/// changes). Only CBuildInfo's one C file sees it, so a new commit recompiles
/// that file and what links it, not the dependencies. Unset, the binary says
/// "unknown": a plain `swift build` cannot know what it was built from.
let buildCommit: [CSetting] = {
    guard let commit = ProcessInfo.processInfo.environment["IOTGW_COMMIT"], !commit.isEmpty else { return [] }
    guard commit.wholeMatch(of: /[0-9a-f]{7,40}(-dirty)?/) != nil else {
        FileHandle.standardError.write(Data("error: IOTGW_COMMIT=\(commit): expected a hex commit hash, optionally with -dirty (e.g. 0130b5d); unset it for a build that says 'unknown'\n".utf8))
        exit(1)
    }
    return [.define("IOTGW_COMMIT", to: "\"\(commit)\"")]
}()

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
/// The FIFOs of the outbox, the CoAP engine and the forwarder.
let deque: Target.Dependency = .product(name: "DequeModule", package: "swift-collections")

let package = Package(
    name: "iot-gateway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "iot-gateway", targets: ["iot-gateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // SHA-256 for device tokens and certificate fingerprints; X.509 parsing
        // for device certificates' names.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
    ],
    targets: [
        // C libraries from Debian 12, reached through pkg-config.
        .systemLibrary(
            name: "CCoAP",
            pkgConfig: "libcoap-3-openssl",
            providers: [.apt(["libcoap3-dev"])]
        ),
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            // GnuTLS's headers for reading HTTPS client certificates.
            providers: [.apt(["libmicrohttpd-dev", "libgnutls28-dev"])]
        ),
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            // OpenSSL's headers for the write coalescing in its shim.
            providers: [.apt(["libmosquitto-dev", "libssl-dev"])]
        ),

        .systemLibrary(
            name: "CCBOR",
            pkgConfig: "libcbor",
            providers: [.apt(["libcbor-dev"])]
        ),

        // The commit the binary was built from (see buildCommit above).
        .target(name: "CBuildInfo", cSettings: buildCommit),

        // The pure core: message model, configuration, routing.
        .target(
            name: "GatewayCore",
            dependencies: [
                "CBuildInfo",
                "Yams",
                logging,
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // The durable outbox (SQLite through GRDB) and its group-commit writer.
        .target(
            name: "GatewayStore",
            dependencies: [
                "GatewayCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The SQLite C API, for the two statements run per message.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                deque,
                logging,
            ]
        ),
        // One adapter per C library; no C type leaves these targets.
        .target(
            name: "CoAPIngress",
            dependencies: ["GatewayCore", "CCoAP", deque, logging]
        ),
        .target(
            name: "HTTPIngress",
            dependencies: ["GatewayCore", "CMicroHTTPD", logging]
        ),
        // CBOR bodies (payload: json, payload: senml) through libcbor.
        .target(
            name: "CBORCodec",
            dependencies: ["GatewayCore", "CCBOR"]
        ),
        .target(
            name: "MQTTEgress",
            dependencies: ["GatewayCore", "CMosquitto", logging]
        ),
        // Wiring and lifecycle.
        .target(
            name: "GatewayRuntime",
            dependencies: [
                "GatewayCore", "GatewayStore", "CoAPIngress", "HTTPIngress", "MQTTEgress", "CBORCodec",
                deque,
                logging,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "iot-gateway",
            dependencies: [
                "GatewayRuntime", "GatewayCore", "GatewayStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                logging,
            ]
        ),

        // Byte-taking entry points of the fuzz targets (docs/fuzzing.md). Built
        // by every build: FuzzRegressionTests replays the committed corpus and
        // regressions through them; fuzz/run links them into libFuzzer binaries.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "GatewayCore", "CoAPIngress", "HTTPIngress", "CBORCodec",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets"]),

        // What the unit test targets share (child processes' output in files).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore", "TestSupport"]),
        .testTarget(
            name: "GatewayStoreTests",
            dependencies: ["GatewayStore", "GatewayCore", logging, .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "GatewayRuntimeTests", dependencies: ["GatewayRuntime", "GatewayStore", "GatewayCore", "HTTPIngress", "TestSupport", logging]),
        .testTarget(name: "HTTPIngressTests", dependencies: ["HTTPIngress", "GatewayCore", "TestSupport", logging]),
        .testTarget(name: "CBORCodecTests", dependencies: ["CBORCodec", "GatewayCore", "TestSupport"]),
        .testTarget(name: "CoAPIngressTests", dependencies: ["CoAPIngress", "GatewayCore", "TestSupport", logging]),
        // Starts real processes: mosquitto with mutual TLS, the gateway, coap-client, curl.
        .testTarget(name: "IntegrationTests", dependencies: ["GatewayStore", "GatewayCore"]),
    ],
    swiftLanguageModes: [.v6]
)

/// The libFuzzer executables, one per target in fuzz/entry/, declared only
/// when fuzz/run builds them (IOTGW_FUZZ=1, with --sanitize=fuzzer): each
/// defines LLVMFuzzerTestOneInput and no main, so an ordinary build could not
/// link them.
if ProcessInfo.processInfo.environment["IOTGW_FUZZ"] == "1" {
    for name in ["coap_request", "http_request", "config_loader", "registry_loader", "senml"] {
        package.targets.append(.executableTarget(name: "fuzz_\(name)", dependencies: ["FuzzTargets"], path: "fuzz/entry/\(name)"))
        package.products.append(.executable(name: "fuzz_\(name)", targets: ["fuzz_\(name)"]))
    }
}
