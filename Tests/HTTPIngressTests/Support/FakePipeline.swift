import Foundation
import GatewayCore
import Synchronization

/// A test double for the pipeline: records what it is given and completes
/// the way the test asks.
final class FakePipeline: IngressPipeline {
    typealias Outcome = Result<Acceptance, IngressRejection>

    enum Behaviour: Sendable {
        /// Throws from `accept`.
        case reject(IngressRejection)
        /// Calls the completion inside `accept`, before returning.
        case completeInline(Outcome)
        /// Calls the completion from another thread after a delay.
        case completeLater(seconds: Double, Outcome)
        /// Succeeds inline, or from another thread within 20 ms, at random:
        /// races the completion against the worker's suspend.
        case completeRandomly
        /// Keeps the completion until the test calls `completeHeld`.
        case hold
        /// Behaves like the router with one mapping: 404 for other paths,
        /// 405 for other methods, else accepted at once.
        case route(path: [String], methods: [RequestMethod])
        /// Answers at once without a completion, as a QoS 0 message does.
        case answerAtOnce(Acceptance)
    }

    private struct Record {
        var requests: [IngressRequest] = []
        var held: [@Sendable (Outcome) -> Void] = []
        var completions = 0
    }

    let behaviour: Behaviour
    private let record = Mutex(Record())

    init(_ behaviour: Behaviour) {
        self.behaviour = behaviour
    }

    var requests: [IngressRequest] { record.withLock { $0.requests } }
    /// How many times the pipeline has called a completion so far.
    var completions: Int { record.withLock { $0.completions } }

    func accept(
        _ request: IngressRequest,
        completion: @escaping @Sendable (Outcome) -> Void
    ) throws(IngressRejection) -> IngressAdmission {
        record.withLock { $0.requests.append(request) }
        switch behaviour {
        case .reject(let rejection):
            throw rejection
        case .completeInline(let outcome):
            fire(completion, outcome)
        case .completeLater(let seconds, let outcome):
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { self.fire(completion, outcome) }
        case .completeRandomly:
            if Bool.random() {
                fire(completion, .success(.stored))
            } else {
                DispatchQueue.global().asyncAfter(deadline: .now() + .microseconds(Int.random(in: 0...20_000))) {
                    self.fire(completion, .success(.stored))
                }
            }
        case .hold:
            record.withLock { $0.held.append(completion) }
        case .route(let path, let methods):
            guard request.path == path else { throw .notFound(reason: "no mapping for \(request.resource)") }
            guard methods.contains(request.method) else {
                throw .methodNotAllowed(allowed: methods, reason: "method \(request.method.rawValue) not allowed")
            }
            fire(completion, .success(.stored))
        case .answerAtOnce(let acceptance):
            return .answered(acceptance)
        }
        return .pending
    }

    /// Completes every held request, from a thread of its own.
    func completeHeld(_ outcome: Outcome) {
        let held = record.withLock { record in
            defer { record.held = [] }
            return record.held
        }
        let done = DispatchSemaphore(value: 0)
        Thread {
            for completion in held { self.fire(completion, outcome) }
            done.signal()
        }.start()
        done.wait()
    }

    /// Waits until the pipeline has seen `count` requests (generously: curl
    /// may take a while to start on a loaded machine).
    func waitForRequests(_ count: Int, timeout: Double = 10) -> Bool {
        let deadline = Date() + timeout
        while Date() < deadline {
            if requests.count >= count { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    private func fire(_ completion: @Sendable (Outcome) -> Void, _ outcome: Outcome) {
        record.withLock { $0.completions += 1 }
        completion(outcome)
    }
}
