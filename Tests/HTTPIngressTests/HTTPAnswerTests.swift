import GatewayCore
@testable import HTTPIngress
import Testing

@Suite("Status contract")
struct HTTPAnswerTests {
    private func header(_ answer: HTTPAnswer, _ name: String) -> String? {
        answer.headers.first { $0.name == name }?.value
    }

    @Test func successIs202Accepted() {
        let answer = HTTPAnswer(outcome: .success(.stored))
        #expect(answer.status == 202)
        #expect(answer.body == "accepted\n")
        #expect(header(answer, "Content-Type") == "text/plain; charset=utf-8")
    }

    @Test(arguments: [
        (IngressRejection.notFound(reason: "no mapping"), UInt32(404)),
        (.badRequest(reason: "bad"), 400),
        (.payloadTooLarge(limit: 10, reason: "big"), 413),
        (.internalError(reason: "broken"), 500),
        (.methodNotAllowed(allowed: [.post, .put], reason: "nope"), 405),
        (.unavailable(retryAfterSeconds: 7, reason: "full"), 503),
    ])
    func rejectionsMapToStatus(rejection: IngressRejection, status: UInt32) {
        let answer = HTTPAnswer(outcome: .failure(rejection))
        #expect(answer.status == status)
        #expect(answer.body == rejection.reason + "\n")
        #expect(header(answer, "Content-Type") == "text/plain; charset=utf-8")
    }

    @Test func methodNotAllowedListsAllowedMethods() {
        let answer = HTTPAnswer(rejection: .methodNotAllowed(allowed: [.post, .put], reason: "x"))
        #expect(header(answer, "Allow") == "POST, PUT")
    }

    @Test func emptyAllowListIsOmitted() {
        let answer = HTTPAnswer(rejection: .methodNotAllowed(allowed: [], reason: "x"))
        #expect(header(answer, "Allow") == nil)
    }

    @Test func unavailableCarriesRetryAfter() {
        let answer = HTTPAnswer(rejection: .unavailable(retryAfterSeconds: 7, reason: "full"))
        #expect(header(answer, "Retry-After") == "7")
        #expect(header(HTTPAnswer(rejection: .unavailable(retryAfterSeconds: -3, reason: "x")), "Retry-After") == "0")
    }
}
