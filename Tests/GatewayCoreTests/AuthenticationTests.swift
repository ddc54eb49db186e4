import Foundation
import Testing
@testable import GatewayCore

private let here = SourceLocation(file: "devices.yaml", line: 1, column: 1)
private let kitchen = Device(
    id: "kitchen-1", groups: ["kitchen"], psk: Array("k1-key".utf8), tokenHash: Secrets.tokenHash("t1"),
    certificateName: "kitchen-1.example", location: here
)
private let hall = Device(id: "hall-2", groups: ["hall"], psk: Array("h2-key".utf8), tokenHash: Secrets.tokenHash("t2"), location: here)
private let retired = Device(id: "old-3", disabled: true, tokenHash: Secrets.tokenHash("t3"), location: here)
private let registry = DeviceRegistry(validated: [kitchen, hall, retired])

@Suite("Authenticator")
struct AuthenticatorTests {
    let authenticator = Authenticator(registry: registry)

    @Test func eachCredentialFindsItsDevice() {
        #expect(authenticator.authenticate(.psk(identity: "kitchen-1", key: Array("k1-key".utf8)), transport: .secure) == .device(kitchen))
        #expect(authenticator.authenticate(.bearer(token: "t2"), transport: .secure) == .device(hall))
        #expect(authenticator.authenticate(.basic(id: "kitchen-1", token: "t1"), transport: .secure) == .device(kitchen))
        let certificate = PeerCertificate(fingerprint: Digest.sha256([9]), names: ["kitchen-1.example"])
        #expect(authenticator.authenticate(.certificate(certificate), transport: .secure) == .device(kitchen))
        // A disabled device still authenticates; the mapping check refuses it.
        #expect(authenticator.authenticate(.bearer(token: "t3"), transport: .secure) == .device(retired))
    }

    @Test func wrongOrStaleCredentialsFail() {
        func failed(_ credential: PresentedCredential) -> Bool {
            if case .failed = authenticator.authenticate(credential, transport: .secure) { return true }
            return false
        }
        #expect(failed(.bearer(token: "nope")))
        #expect(failed(.basic(id: "kitchen-1", token: "t2")))      // another device's token
        #expect(failed(.basic(id: "ghost", token: "t1")))
        #expect(failed(.psk(identity: "kitchen-1", key: Array("old-key".utf8))))  // re-keyed since the handshake
        #expect(failed(.psk(identity: "removed", key: Array("k1-key".utf8))))
        #expect(failed(.certificate(PeerCertificate(fingerprint: Digest.sha256([1]), names: ["stranger"]))))
        #expect(failed(.unusable(reason: "unsupported Authorization scheme")))
    }

    @Test func aPlainTransportCarriesNoCredentials() {
        #expect(authenticator.authenticate(.bearer(token: "t1"), transport: .plain) == .anonymous)
        #expect(authenticator.authenticate(.bearer(token: "wrong"), transport: .plain) == .anonymous)
        #expect(authenticator.authenticate(.none, transport: .secure) == .anonymous)
    }
}

@Suite("Authorization by mapping")
struct AuthorizationTests {
    static func rule(_ resource: String, topic: String, auth: MappingAuth = .device, identity: String? = nil, allow: [String] = []) -> MappingRule {
        MappingRule(
            name: "m", resource: try! ResourcePattern.parse(resource).get(), topic: try! TopicTemplate.parse(topic).get(),
            auth: auth, identity: identity, allow: allow, location: here
        )
    }

    static func request(_ path: [String], transport: Transport = .secure) -> IngressRequest {
        IngressRequest(ingress: .coap, method: .post, path: path, contentType: nil, payload: [], peer: "10.0.0.9:5000", transport: transport)
    }

    let router = Router(rules: [
        rule("/sensors/{device}/t", topic: "dt/{device}/t", identity: "device"),
        rule("/kitchen/{device}", topic: "dt/kitchen/{device_id}", allow: ["kitchen"]),
        rule("/open/{x}", topic: "dt/open/{x}", auth: .anonymous),
    ], gatewayName: "gw")

    func code(_ result: Result<Route, IngressRejection>) -> String {
        switch result {
        case .success: return "ok"
        case .failure(let rejection): return rejection.outcome.rawValue
        }
    }

    @Test func identityBindsThePathVariableToTheDevice() throws {
        let own = try router.route(Self.request(["sensors", "kitchen-1", "t"]), authentication: .device(kitchen)).get()
        #expect(own.topic == "dt/kitchen-1/t")
        #expect(own.deviceID == "kitchen-1")
        guard case .failure(.forbidden(let reason)) = router.route(Self.request(["sensors", "hall-2", "t"]), authentication: .device(kitchen)) else {
            Issue.record("kitchen-1 posting as hall-2 was not forbidden")
            return
        }
        #expect(reason == "device 'kitchen-1' may not send as 'hall-2'")
    }

    @Test func allowListsGroupsAndIDsAndDeviceIDFillsTheTopic() throws {
        let route = try router.route(Self.request(["kitchen", "anything"]), authentication: .device(kitchen)).get()
        #expect(route.topic == "dt/kitchen/kitchen-1")
        #expect(code(router.route(Self.request(["kitchen", "anything"]), authentication: .device(hall))) == "forbidden")
    }

    @Test func aDisabledDeviceIsForbiddenEvenOnAnonymousMappings() {
        #expect(code(router.route(Self.request(["sensors", "old-3", "t"]), authentication: .device(retired))) == "forbidden")
        #expect(code(router.route(Self.request(["open", "x"]), authentication: .device(retired))) == "forbidden")
    }

    @Test func noCredentialsWhereADeviceIsNeededIsUnauthorized() {
        guard case .failure(.unauthorized(let plainReason, false)) = router.route(Self.request(["sensors", "a", "t"], transport: .plain), authentication: .anonymous) else {
            Issue.record("plain request to a device mapping was not 4.01")
            return
        }
        #expect(plainReason.contains("DTLS") && plainReason.contains("HTTPS"))
        #expect(code(router.route(Self.request(["sensors", "a", "t"]), authentication: .anonymous)) == "unauthorized")
    }

    @Test func failedCredentialsAreUnauthorizedEverywhere() {
        for path in [["sensors", "a", "t"], ["open", "x"]] {
            guard case .failure(.unauthorized(_, true)) = router.route(Self.request(path), authentication: .failed(reason: "invalid token")) else {
                Issue.record("failed credentials on \(path) were not 4.01 with invalidCredentials")
                continue
            }
        }
    }

    @Test func anonymousMappingsTakeAnyone() throws {
        #expect(try router.route(Self.request(["open", "x"], transport: .plain), authentication: .anonymous).get().deviceID == nil)
        #expect(try router.route(Self.request(["open", "x"]), authentication: .device(hall)).get().deviceID == "hall-2")
    }

    @Test func rejectionsHaveTheirOwnOutcomes() {
        #expect(IngressRejection.unauthorized(reason: "r", invalidCredentials: false).outcome == .unauthorized)
        #expect(IngressRejection.forbidden(reason: "r").outcome == .forbidden)
        #expect(IngressRejection.tooManyRequests(retryAfterSeconds: 3, reason: "r").outcome == .tooManyRequests)
        #expect(RequestOutcome.tooManyRequests.rawValue == "too_many_requests")
    }
}

@Suite("Failure lockouts")
struct FailureTrackerTests {
    @Test func theNthFailureInTheWindowLocksOutForTheLockout() {
        let tracker = FailureTracker(limit: FailureLimit(failures: 3, window: 10, lockout: 30))
        #expect(tracker.lockout("a", now: 0) == nil)
        #expect(tracker.recordFailure("a", now: 1) == nil)
        #expect(tracker.recordFailure("a", now: 2) == nil)
        #expect(tracker.recordFailure("a", now: 3) == 30)
        #expect(tracker.lockout("a", now: 4) == 29)
        #expect(tracker.lockout("b", now: 4) == nil)
        #expect(tracker.lockout("a", now: 33.5) == nil)
    }

    @Test func failuresOutsideTheWindowDoNotAddUp() {
        let tracker = FailureTracker(limit: FailureLimit(failures: 3, window: 10, lockout: 30))
        tracker.recordFailure("a", now: 0)
        tracker.recordFailure("a", now: 5)
        tracker.recordFailure("a", now: 20)  // a new window
        #expect(tracker.lockout("a", now: 21) == nil)
    }

    @Test func zeroFailuresTurnsItOff() {
        let tracker = FailureTracker(limit: FailureLimit(failures: 0))
        for second in 0..<100 { tracker.recordFailure("a", now: Double(second)) }
        #expect(tracker.lockout("a", now: 100) == nil)
        #expect(tracker.count == 0)
    }

    @Test func aFloodFromManySourcesStaysWithinCapacity() {
        let tracker = FailureTracker(limit: FailureLimit(failures: 2, window: 60, lockout: 60), capacity: 100)
        for index in 0..<10_000 { tracker.recordFailure("source-\(index)", now: Double(index) * 0.001) }
        #expect(tracker.count <= 100)
        // A locked-out key survives eviction pressure from keys with single failures.
        tracker.recordFailure("loud", now: 10)
        tracker.recordFailure("loud", now: 10)
        for index in 0..<50 { tracker.recordFailure("late-\(index)", now: 10) }
        #expect(tracker.lockout("loud", now: 11) != nil)
    }

    @Test func deviceSecurityKeysSourcesAndDevicesApart() {
        let security = DeviceSecurity(registry: registry, limit: FailureLimit(failures: 2, window: 60, lockout: 60))
        let request = IngressRequest(
            ingress: .http, method: .post, path: ["x"], contentType: nil, payload: [], peer: "[2001:db8::1]:4000",
            transport: .secure, credential: .bearer(token: "t1")
        )
        #expect(request.source == "2001:db8::1")
        security.recordFailure(request, device: nil)
        security.recordFailure(request, device: nil)
        #expect(security.lockout(request) != nil)
        var elsewhere = request
        elsewhere.peer = "10.1.1.1:1"
        #expect(security.lockout(elsewhere) == nil)
        // An authenticated device that keeps failing is paused wherever it is.
        security.recordFailure(elsewhere, device: "kitchen-1")
        security.recordFailure(elsewhere, device: "kitchen-1")
        var basic = elsewhere
        basic.peer = "10.2.2.2:2"
        basic.credential = .basic(id: "kitchen-1", token: "t1")
        #expect(security.lockout(basic) != nil)
        #expect(security.lockout(basic, device: "hall-2") == nil)
    }

    @Test func handshakesAskTheCurrentRegistry() {
        let security = DeviceSecurity(registry: registry, limit: FailureLimit(failures: 2, window: 60, lockout: 60))
        #expect(security.preSharedKey(identity: "hall-2", source: "10.0.0.1") == Array("h2-key".utf8))
        security.replace(DeviceRegistry(validated: [kitchen]))
        #expect(security.preSharedKey(identity: "hall-2", source: "10.0.0.1") == nil)
        // That unknown identity was a failure; one more locks the source out,
        // and then even a known identity gets no key from there.
        security.handshakeFailed(source: "10.0.0.1")
        #expect(security.preSharedKey(identity: "kitchen-1", source: "10.0.0.1") == nil)
        #expect(security.preSharedKey(identity: "kitchen-1", source: "10.0.0.2") == Array("k1-key".utf8))
    }

    @Test(arguments: [("1.2.3.4:5683", "1.2.3.4"), ("[::1]:5683", "::1"), ("unknown", "unknown"), ("::1", "::1")])
    func peerHosts(_ peer: String, _ host: String) {
        #expect(PeerAddress.host(of: peer) == host)
    }
}

@Suite("Credentials in text")
struct CredentialTextTests {
    @Test func describingACredentialNeverShowsItsSecret() {
        let credentials: [PresentedCredential] = [
            .psk(identity: "d1", key: Array("s3cret-psk".utf8)), .bearer(token: "s3cret-token"), .basic(id: "d1", token: "s3cret-basic"),
        ]
        for credential in credentials {
            #expect(!"\(credential)".contains("s3cret"), "\(credential)")
            #expect(!String(reflecting: credential).contains("s3cret"))
        }
    }
}
