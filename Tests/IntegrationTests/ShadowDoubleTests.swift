import Foundation
import Testing

/// The shadow service double the shadow and delta tests lean on answers as
/// AWS IoT Core does: its own self-check (Tests/Doubles/check_shadow_service.sh,
/// mosquitto_pub/_sub against it on a broker of its own) must pass.
@Suite("Shadow service double")
struct ShadowDoubleTests {
    @Test("get, update, delete, versions, deltas, documents, named shadows and errors as AWS answers them")
    func answersAsAWSDoes() async throws {
        let script = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Doubles/check_shadow_service.sh").path
        let port = String(try LoopbackPorts.tcp())
        let result = try await ProcessRunner.run("/bin/bash", [script], environment: ["SHADOW_CHECK_PORT": port], timeout: .seconds(180))
        #expect(result.succeeded, "\(result.summary)")
        #expect(!result.stdoutText.contains("FAIL"), "\(result.stdoutText)")
        #expect(result.stdoutText.contains("PASS"), "the self-check ran no check:\n\(result.summary)")
    }
}
