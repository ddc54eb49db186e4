import GatewayCore
@testable import HTTPIngress
import Testing

@Suite("Suspend and resume state machine")
struct RendezvousTests {
    private func make() -> Rendezvous {
        // Never dereferenced: the tests pass their own suspend action.
        Rendezvous(connection: ConnectionRef(pointer: OpaquePointer(bitPattern: 0x1000)!))
    }

    private func text(_ outcome: Rendezvous.Outcome?) -> String {
        switch outcome {
        case nil: return "none"
        case .success: return "success"
        case .failure(let rejection): return "\(rejection)"
        }
    }

    @Test func completionAfterSuspendResumesOnce() {
        let rendezvous = make()
        var suspended = 0
        #expect(text(rendezvous.suspendUnlessCompleted { _ in suspended += 1 }) == "none")
        #expect(suspended == 1)
        #expect(text(rendezvous.takeResumedOutcome()) == "none")  // not resumed yet
        #expect(rendezvous.complete(.success(.stored)) != nil)  // the caller must resume
        #expect(rendezvous.complete(.failure(.internalError(reason: "late"))) == nil)  // a second outcome is ignored
        #expect(text(rendezvous.takeResumedOutcome()) == "success")
        #expect(text(rendezvous.takeResumedOutcome()) == "none")
    }

    @Test func completionBeforeSuspendIsAnsweredWithoutSuspending() {
        let rendezvous = make()
        let full = IngressRejection.unavailable(retryAfterSeconds: 1, reason: "full")
        #expect(rendezvous.complete(.failure(full)) == nil)
        var suspended = 0
        let outcome = rendezvous.suspendUnlessCompleted { _ in suspended += 1 }
        #expect(suspended == 0)
        #expect(text(outcome) == "\(full)")
        #expect(rendezvous.complete(.success(.stored)) == nil)  // nothing to resume
    }

    @Test func abandonedRequestIgnoresCompletion() {
        let rendezvous = make()
        rendezvous.abandon()
        #expect(rendezvous.complete(.success(.stored)) == nil)
    }
}
