import Foundation
import Testing
@testable import FuzzTargets

/// One at a time: each replay runs for seconds without yielding, and the
/// whole test process shares two cooperative threads (on this 2-core box)
/// with tests that wait on them.
@Suite(.serialized)
struct FuzzReplay {}

extension FuzzReplay {
    /// Every committed input of every fuzz target, through the same entry point
    /// the libFuzzer binaries call: a seed or a past finding that crashes again
    /// fails `swift test` (the test process dies on the failed precondition,
    /// naming the file in its last "replaying" line on stderr).
    struct CorpusReplayTests {
        static let fuzzDirectory = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fuzz")

        static func inputs(_ folder: String, _ target: String) -> [URL] {
            let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { directory.appendingPathComponent($0) }
        }

        static func bytes(_ url: URL) throws -> [UInt8] {
            Array(try Data(contentsOf: url))
        }

        @Test(arguments: FuzzTargetCatalog.all.map(\.name))
        func seedsAndRegressionsReplayCleanly(target: String) throws {
            let run = try #require(FuzzTargetCatalog.named(target))
            let seeds = Self.inputs("corpus", target)
            // A target without seeds would start blind and this test would replay nothing.
            #expect(seeds.count >= 3, "fuzz/corpus/\(target) holds \(seeds.count) seeds")
            for url in seeds + Self.inputs("regressions", target) {
                FileHandle.standardError.write(Data("replaying \(url.path)\n".utf8))
                run(try Self.bytes(url))
            }
        }
    }

    /// The seeds mean what their names say, so the fuzzer starts from requests
    /// and files that reach deep (accepted, routed, loaded) as well as from each
    /// kind of refusal. A name ending in a status (`-401`) expects it last;
    /// otherwise every answer is a success.
    struct SeedMeaningTests {
        static func expectedStatus(_ url: URL) -> UInt32? {
            let name = url.lastPathComponent
            guard let dash = name.lastIndex(of: "-") else { return nil }
            return UInt32(name[name.index(after: dash)...])
        }

        @Test func coapSeedsGetTheAnswersTheirNamesSay() throws {
            let seeds = CorpusReplayTests.inputs("corpus", "coap_request")
            #expect(!seeds.isEmpty)
            for url in seeds {
                let codes = CoAPRequestTarget.run(try CorpusReplayTests.bytes(url))
                if let expected = Self.expectedStatus(url) {
                    #expect(codes.last == expected, "\(url.lastPathComponent): \(codes)")
                } else {
                    #expect(!codes.isEmpty && codes.allSatisfy { $0 == 204 || $0 == 231 }, "\(url.lastPathComponent): \(codes)")
                }
            }
        }

        @Test func blockwiseSeedContinuesTwiceThenIsAccepted() throws {
            let url = CorpusReplayTests.fuzzDirectory.appendingPathComponent("corpus/coap_request/block1-three-blocks")
            #expect(CoAPRequestTarget.run(try CorpusReplayTests.bytes(url)) == [231, 231, 204])
        }

        @Test func httpSeedsGetTheStatusTheirNamesSay() throws {
            let seeds = CorpusReplayTests.inputs("corpus", "http_request")
            #expect(!seeds.isEmpty)
            for url in seeds {
                let status = HTTPRequestTarget.run(try CorpusReplayTests.bytes(url))
                #expect(status == (Self.expectedStatus(url) ?? 202), "\(url.lastPathComponent): \(String(describing: status))")
            }
        }

        @Test func loaderSeedsLoadUnlessNamedRefused() throws {
            for (target, run) in [("config_loader", ConfigLoaderTarget.run), ("registry_loader", RegistryLoaderTarget.run)] as [(String, ([UInt8]) -> Bool?)] {
                let seeds = CorpusReplayTests.inputs("corpus", target)
                #expect(!seeds.isEmpty)
                for url in seeds {
                    let loaded = run(try CorpusReplayTests.bytes(url))
                    #expect(loaded == !url.lastPathComponent.contains("refused"), "\(target)/\(url.lastPathComponent)")
                }
            }
        }

        /// The loaders' inputs may not name the kernel's file systems (see LoaderInput).
        @Test func configNamingDeviceFilesIsLeftOut() {
            #expect(ConfigLoaderTarget.run(Array("mapping_files: [/dev/zero]".utf8)) == nil)
            #expect(ConfigLoaderTarget.run(Array("mapping_files: [certs/device-ca.pem]".utf8)) == false)
            #expect(ConfigLoaderTarget.run(Array("mapping_files: [zero]".utf8)) == false)
        }
    }


    /// Findings the fuzzers made, beyond not crashing again.
    struct FindingTests {
        /// Foundation's parser takes `0` followed by NULs as JSON; a `payload:
        /// json` mapping must refuse it rather than publish it.
        @Test func numberFollowedByNulIsNotJSON() throws {
            let url = CorpusReplayTests.fuzzDirectory.appendingPathComponent("regressions/senml/json-number-then-nul-400")
            #expect(SenMLTarget.run(try CorpusReplayTests.bytes(url)) == -400)
        }

        /// Such a body goes into an envelope as text (escaped), not as raw JSON.
        @Test func envelopeOfNumberFollowedByNulIsJSON() throws {
            let request = Array("POST /public/station-9/rain HTTP/1.1\r\nContent-Type: application/json\r\n\r\n0\0\0".utf8)
            #expect(HTTPRequestTarget.run(request) == 202)
        }
    }

}

extension FuzzReplay.SeedMeaningTests {
    @Test func senmlSeedsBecomeMessagesUnlessNamedRefused() throws {
        let seeds = FuzzReplay.CorpusReplayTests.inputs("corpus", "senml")
        #expect(!seeds.isEmpty)
        for url in seeds {
            let result = SenMLTarget.run(try FuzzReplay.CorpusReplayTests.bytes(url))
            if let expected = Self.expectedStatus(url) {
                #expect(result == -Int(expected), "\(url.lastPathComponent): \(result)")
            } else {
                #expect(result > 0, "\(url.lastPathComponent): \(result)")
            }
        }
    }

    /// A record per message under `batch: true`, the whole pack as one otherwise.
    @Test func senmlRecordsAreOneMessageEach() throws {
        let directory = FuzzReplay.CorpusReplayTests.fuzzDirectory.appendingPathComponent("corpus/senml")
        #expect(SenMLTarget.run(try FuzzReplay.CorpusReplayTests.bytes(directory.appendingPathComponent("senml-json-pack"))) == 1)
        #expect(SenMLTarget.run(try FuzzReplay.CorpusReplayTests.bytes(directory.appendingPathComponent("senml-records-json"))) == 6)
        #expect(SenMLTarget.run(try FuzzReplay.CorpusReplayTests.bytes(directory.appendingPathComponent("senml-records-cbor-coap"))) == 4)
    }
}

extension FuzzReplay.FindingTests {
    /// Maps as map keys, nested: converting them to JSON escaped each level's
    /// key again, doubling the text per level (the fuzzer's 308 bytes hung).
    @Test func cborMapKeysThatAreMapsAreRefused() throws {
        let url = FuzzReplay.CorpusReplayTests.fuzzDirectory.appendingPathComponent("regressions/senml/cbor-map-keys-nested-400")
        #expect(SenMLTarget.run(try FuzzReplay.CorpusReplayTests.bytes(url)) == -400)
        // {{1: 2}: 3} as a payload: json body declared application/cbor.
        #expect(SenMLTarget.run([2 | 3 << 3, 0xA1, 0xA1, 0x01, 0x02, 0x03]) == -400)
        // Number and text keys still convert: {1: 2, "a": 3}.
        #expect(SenMLTarget.run([2 | 3 << 3, 0xA2, 0x01, 0x02, 0x61, 0x61, 0x03]) == 1)
    }
}
