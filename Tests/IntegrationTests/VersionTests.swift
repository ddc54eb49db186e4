import Foundation
import GatewayCore
import Testing

/// `iot-gateway --version` names the version and the commit. The binary and
/// this test bundle come from one build, so they must agree; a plain build
/// says "unknown" rather than guess (packaging/build-deb passes the commit in,
/// and packaging/check-deb checks the packaged binary's).
@Suite("version")
struct VersionTests {
    @Test("--version prints VERSION (commit HASH), the same as GatewayVersion")
    func version() async throws {
        let result = try await ProcessRunner.run(try GatewayBinary.path(), ["--version"])
        #expect(result.succeeded, "\(result.summary)")
        let line = result.stdoutText.trimmingCharacters(in: .newlines)
        let match = try #require(line.wholeMatch(of: /(\d+\.\d+\.\d+) \(commit (unknown|[0-9a-f]{7,40}(?:-dirty)?)\)/),
                                 "unexpected --version output: '\(line)'")
        #expect(String(match.1) == GatewayVersion.string)
        #expect(String(match.2) == GatewayVersion.commit)
        #expect(GatewayVersion.string == "0.12.0")
    }
}
