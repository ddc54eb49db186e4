import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The devices, mappings and settings every device-identity test shares.
enum SecureSetup {
    static let kitchen = TestDevice(id: "kitchen-1", groups: ["kitchen"], psk: "kitchen1PSKkitchen1PSK", token: "tok-kitchen-1", certificateName: "kitchen-1")
    static let hall = TestDevice(id: "hall-2", groups: ["hall"], psk: "hall2PSKhall2PSKhall2PSK", token: "tok-hall-2", certificateName: "hall-2")
    static let old = TestDevice(id: "old-3", disabled: true, psk: "old3PSKold3PSKold3PSK", token: "tok-old-3")
    static let devices = [kitchen, hall, old]

    /// `identity: device` binds the path to the device; `allow` limits a
    /// mapping to a group; one mapping is open to anyone.
    static let mappings = """
        - name: sensors
          resource: /sensors/{device}/temperature
          identity: device
          topic: it/sensors/{device}/temperature
          qos: 1
        - name: kitchen-only
          resource: /kitchen/{anything}/state
          allow: [kitchen]
          topic: it/kitchen/{device_id}/state
          qos: 1
        - name: open
          resource: /open/{x}
          auth: anonymous
          topic: it/open/{x}
          qos: 1

        """

    /// Lockouts are off unless a test is about them: the tests' refusals all
    /// come from 127.0.0.1 and would otherwise lock each other out.
    static func settings(
        _ pki: DevicePKI, devices: [TestDevice] = devices, devicesExtra: [String] = ["max_failures: 0"], outboxMaxMessages: Int? = nil
    ) -> GatewaySettings {
        var settings = GatewaySettings(mappings: mappings, outboxMaxMessages: outboxMaxMessages)
        settings.security = GatewaySecurity(pki: pki, devices: devices, devicesExtra: devicesExtra)
        return settings
    }

    static func psk(_ device: TestDevice) -> CoAPSecurity { .psk(identity: device.id, key: device.psk!) }
    static func bearer(_ token: String) -> [String: String] { ["Authorization": "Bearer \(token)"] }
    static func basic(_ id: String, _ token: String) -> [String: String] {
        ["Authorization": "Basic " + Data("\(id):\(token)".utf8).base64EncodedString()]
    }
}

/// Devices prove who they are (issue 9): real `coap-client-openssl` and
/// `curl` with right, wrong, revoked and other devices' credentials, each
/// answered with exactly its code, and nothing of a refused request reaching
/// the broker.
@Suite("Device identity")
struct DeviceAuthTests {
    @Test("CoAP over DTLS with PSKs: own key 2.04; wrong key or unknown identity: no handshake; disabled, another device's path, not in allow: 4.03; plain CoAP: 4.01 for device mappings")
    func dtlsPSK() async throws {
        let pki = try await DevicePKI.shared()
        try await EndToEnd.run("auth-dtls-psk", settings: SecureSetup.settings(pki)) { env in
            let gateway = env.gateway
            let port = gateway.dtlsPort
            let reading = Array("21.5".utf8)
            func post(_ path: String, _ security: CoAPSecurity) async throws -> CoAPResponse? {
                try await CoAP.attempt("post", port: port, path: path, payload: reading, wait: 5, security: security).0
            }

            let own = try await post("/sensors/kitchen-1/temperature", SecureSetup.psk(SecureSetup.kitchen))
            #expect(own?.code == "2.04", "kitchen-1 with its own key: \(String(describing: own))")

            let wrongKey = try await post("/sensors/kitchen-1/temperature", .psk(identity: "kitchen-1", key: "not-the-key"))
            #expect(wrongKey == nil, "a wrong key was answered: \(String(describing: wrongKey))")
            let unknown = try await post("/sensors/ghost/temperature", .psk(identity: "ghost", key: "whatever"))
            #expect(unknown == nil, "an unknown identity was answered: \(String(describing: unknown))")

            let disabled = try await post("/sensors/old-3/temperature", SecureSetup.psk(SecureSetup.old))
            #expect(disabled?.code == "4.03", "disabled device: \(String(describing: disabled))")
            #expect(disabled?.diagnostic.contains("disabled") == true)

            let asAnother = try await post("/sensors/kitchen-1/temperature", SecureSetup.psk(SecureSetup.hall))
            #expect(asAnother?.code == "4.03", "hall-2 posting as kitchen-1: \(String(describing: asAnother))")
            let notAllowed = try await post("/kitchen/x/state", SecureSetup.psk(SecureSetup.hall))
            #expect(notAllowed?.code == "4.03", "hall-2 on a kitchen-only mapping: \(String(describing: notAllowed))")
            let allowed = try await post("/kitchen/x/state", SecureSetup.psk(SecureSetup.kitchen))
            #expect(allowed?.code == "2.04", "kitchen-1 on a kitchen-only mapping: \(String(describing: allowed))")

            let plain = try await CoAP.post(port: gateway.coapPort, path: "/sensors/kitchen-1/temperature", payload: reading)
            #expect(plain.code == "4.01", "plain CoAP to a device mapping: \(plain)")
            #expect(plain.diagnostic.contains("DTLS"), "the 4.01 should say to use DTLS: \(plain)")
            let open = try await CoAP.post(port: gateway.coapPort, path: "/open/plain", payload: reading)
            #expect(open.code == "2.04", "plain CoAP to an anonymous mapping: \(open)")
            let openSecure = try await post("/open/secure", SecureSetup.psk(SecureSetup.kitchen))
            #expect(openSecure?.code == "2.04", "DTLS to an anonymous mapping: \(String(describing: openSecure))")

            let expected: Set = ["it/sensors/kitchen-1/temperature", "it/kitchen/kitchen-1/state", "it/open/plain", "it/open/secure"]
            _ = try await env.subscriber.waitFor(count: expected.count)
            let received = try await env.subscriber.settle(for: .milliseconds(500))
            #expect(Set(received.map(\.topic)) == expected && received.count == expected.count, "\(received.map(\.topic))")

            let metrics = try await PrometheusSamples(HTTP.request("GET", gateway.adminURL("/metrics")).text)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "coap", "outcome": "forbidden"]) == 3)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "coap", "outcome": "unauthorized"]) == 1)
        }
    }

    @Test("CoAP over DTLS with certificates: a registered device's certificate 2.04; another CA's look-alike or an unregistered certificate: no handshake; another device's path: 4.03")
    func dtlsCertificates() async throws {
        let pki = try await DevicePKI.shared()
        try await EndToEnd.run("auth-dtls-x509", settings: SecureSetup.settings(pki)) { env in
            let port = env.gateway.dtlsPort
            func post(_ path: String, _ pair: DevicePKI.Pair) async throws -> CoAPResponse? {
                try await CoAP.attempt(
                    "post", port: port, path: path, payload: Array("1".utf8), wait: 5,
                    security: .certificate(pair, trust: pki.serverCA)
                ).0
            }
            let own = try await post("/sensors/kitchen-1/temperature", pki.devices["kitchen-1"]!)
            #expect(own?.code == "2.04", "kitchen-1's certificate: \(String(describing: own))")
            let rogue = try await post("/sensors/kitchen-1/temperature", pki.rogueKitchen)
            #expect(rogue == nil, "a certificate from another CA was answered: \(String(describing: rogue))")
            let unregistered = try await post("/sensors/meter-7/temperature", pki.devices["meter-7"]!)
            #expect(unregistered == nil, "an unregistered certificate was answered: \(String(describing: unregistered))")
            let asAnother = try await post("/sensors/kitchen-1/temperature", pki.devices["hall-2"]!)
            #expect(asAnother?.code == "4.03", "hall-2's certificate on kitchen-1's path: \(String(describing: asAnother))")

            _ = try await env.subscriber.waitFor(count: 1)
            let received = try await env.subscriber.settle(for: .milliseconds(500))
            #expect(received.map(\.topic) == ["it/sensors/kitchen-1/temperature"], "\(received.map(\.topic))")
        }
    }

    @Test("HTTPS: bearer, Basic and client certificate 202; wrong or no credentials 401 with WWW-Authenticate; another device's path or disabled 403; plain HTTP 401 for device mappings")
    func https() async throws {
        let pki = try await DevicePKI.shared()
        try await EndToEnd.run("auth-https", settings: SecureSetup.settings(pki)) { env in
            let gateway = env.gateway
            let tls = HTTPTLS(trust: pki.serverCA)
            let body = Array("{\"t\":21.5}".utf8)
            func post(_ path: String, _ headers: [String: String] = [:], certificate: DevicePKI.Pair? = nil) async throws -> HTTPResponse {
                var tls = tls
                tls.clientCertificate = certificate
                return try await HTTP.request("POST", gateway.httpsURL(path), body: body, headers: headers, tls: tls)
            }

            let bearer = try await post("/sensors/kitchen-1/temperature", SecureSetup.bearer("tok-kitchen-1"))
            #expect(bearer.status == 202, "bearer: \(bearer)")
            let basic = try await post("/open/basic", SecureSetup.basic("hall-2", "tok-hall-2"))
            #expect(basic.status == 202, "basic: \(basic)")
            let certificate = try await post("/kitchen/c/state", certificate: pki.devices["kitchen-1"]!)
            #expect(certificate.status == 202, "client certificate: \(certificate)")

            let wrong = try await post("/sensors/kitchen-1/temperature", SecureSetup.bearer("tok-wrong"))
            #expect(wrong.status == 401, "wrong token: \(wrong)")
            #expect(wrong.headers("WWW-Authenticate").contains { $0.hasPrefix("Bearer") && $0.contains("invalid_token") }, "\(wrong)")
            let none = try await post("/sensors/kitchen-1/temperature")
            #expect(none.status == 401, "no credentials: \(none)")
            #expect(none.headers("WWW-Authenticate").contains { $0.hasPrefix("Bearer realm=") && !$0.contains("error=") }, "\(none)")
            let wrongBasic = try await post("/sensors/hall-2/temperature", SecureSetup.basic("hall-2", "tok-kitchen-1"))
            #expect(wrongBasic.status == 401, "another device's token under Basic: \(wrongBasic)")
            let rogue = try await post("/sensors/kitchen-1/temperature", certificate: pki.rogueKitchen)
            #expect(rogue.status == 401, "a certificate from another CA: \(rogue)")

            let asAnother = try await post("/sensors/kitchen-1/temperature", SecureSetup.bearer("tok-hall-2"))
            #expect(asAnother.status == 403, "hall-2's token on kitchen-1's path: \(asAnother)")
            let disabled = try await post("/sensors/old-3/temperature", SecureSetup.bearer("tok-old-3"))
            #expect(disabled.status == 403, "disabled device: \(disabled)")
            for response in [wrong, none, asAnother, disabled] { #expect(!response.text.isEmpty, "no diagnostic text: \(response)") }

            let plain = try await HTTP.request("POST", gateway.httpURL("/sensors/kitchen-1/temperature"), body: body, headers: SecureSetup.bearer("tok-kitchen-1"))
            #expect(plain.status == 401, "a token over plain HTTP: \(plain)")
            #expect(plain.text.contains("HTTPS"), "the 401 should say to use HTTPS: \(plain)")
            let open = try await HTTP.post(gateway.httpURL("/open/plain"), body: body)
            #expect(open.status == 202, "plain HTTP to an anonymous mapping: \(open)")

            let expected: Set = ["it/sensors/kitchen-1/temperature", "it/open/basic", "it/kitchen/kitchen-1/state", "it/open/plain"]
            _ = try await env.subscriber.waitFor(count: expected.count)
            let received = try await env.subscriber.settle(for: .milliseconds(500))
            #expect(Set(received.map(\.topic)) == expected && received.count == expected.count, "\(received.map(\.topic))")
            // The envelope-less payloads are as sent; the device is in the log, never the token.
            let log = gateway.currentLog
            #expect(!log.contains("tok-"), "a token appears in the gateway log")
            #expect(!log.contains(SecureSetup.kitchen.psk!), "a PSK appears in the gateway log")
        }
    }

    @Test("repeated failures: 4.29 with Max-Age / 429 with Retry-After, for the source after failed credentials and for the device after refusals; nothing published")
    func lockouts() async throws {
        let pki = try await DevicePKI.shared()
        let settings = SecureSetup.settings(pki, devicesExtra: ["max_failures: 3", "failure_window: 1m", "lockout: 1m"])
        try await EndToEnd.run("auth-lockout", settings: settings) { env in
            let gateway = env.gateway
            let tls = HTTPTLS(trust: pki.serverCA)
            let body = Array("1".utf8)
            // hall-2 keeps posting as kitchen-1: after 3 refusals hall-2 is paused, kitchen-1 is not.
            for attempt in 1...3 {
                let refused = try await HTTP.request("POST", gateway.httpsURL("/sensors/kitchen-1/temperature"), body: body, headers: SecureSetup.bearer("tok-hall-2"), tls: tls)
                #expect(refused.status == 403, "attempt \(attempt): \(refused)")
            }
            let paused = try await HTTP.request("POST", gateway.httpsURL("/sensors/hall-2/temperature"), body: body, headers: SecureSetup.bearer("tok-hall-2"), tls: tls)
            #expect(paused.status == 429, "hall-2 after 3 refusals: \(paused)")
            #expect((Int(paused.header("Retry-After") ?? "") ?? 0) > 0, "429 without Retry-After: \(paused)")
            let other = try await HTTP.request("POST", gateway.httpsURL("/sensors/kitchen-1/temperature"), body: body, headers: SecureSetup.bearer("tok-kitchen-1"), tls: tls)
            #expect(other.status == 202, "kitchen-1 is not paused by hall-2's refusals: \(other)")

            // Wrong tokens from this address: after 3, the address is paused.
            for attempt in 1...3 {
                let wrong = try await HTTP.request("POST", gateway.httpsURL("/sensors/kitchen-1/temperature"), body: body, headers: SecureSetup.bearer("guess-\(attempt)"), tls: tls)
                #expect(wrong.status == 401, "guess \(attempt): \(wrong)")
            }
            let locked = try await HTTP.request("POST", gateway.httpsURL("/sensors/kitchen-1/temperature"), body: body, headers: SecureSetup.bearer("tok-kitchen-1"), tls: tls)
            #expect(locked.status == 429, "even the right token from a locked-out address: \(locked)")
            let coap = try await CoAP.post(port: gateway.coapPort, path: "/sensors/kitchen-1/temperature", payload: body)
            #expect(coap.code == "4.29", "CoAP from the locked-out address: \(coap)")
            #expect((coap.maxAge ?? 0) > 0, "4.29 without Max-Age: \(coap)")
            // What needs no identity still works from there.
            let open = try await HTTP.post(gateway.httpURL("/open/x"), body: body)
            #expect(open.status == 202, "an anonymous mapping from the locked-out address: \(open)")

            _ = try await env.subscriber.waitFor(count: 2)
            let received = try await env.subscriber.settle(for: .milliseconds(500))
            #expect(Set(received.map(\.topic)) == ["it/sensors/kitchen-1/temperature", "it/open/x"] && received.count == 2, "\(received.map(\.topic))")
            let metrics = try await PrometheusSamples(HTTP.request("GET", gateway.adminURL("/metrics")).text)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "http", "outcome": "too_many_requests"]) == 2)
            #expect(metrics.value("iotgw_requests_total", ["protocol": "coap", "outcome": "too_many_requests"]) == 1)
        }
    }

    @Test("a device disabled or removed while the gateway runs is refused within seconds, also on a DTLS session it already holds; what it queued before is delivered")
    func revokedWhileRunning() async throws {
        let pki = try await DevicePKI.shared()
        try await EndToEnd.run("auth-revoke", settings: SecureSetup.settings(pki), brokerDownAtStart: true) { env in
            let gateway = env.gateway
            let tls = HTTPTLS(trust: pki.serverCA)
            var acknowledged: Set<String> = []
            for index in 0..<4 {
                let payload = "kitchen-https-\(index)"
                let response = try await HTTP.request("POST", gateway.httpsURL("/sensors/kitchen-1/temperature"), body: Array(payload.utf8), headers: SecureSetup.bearer("tok-kitchen-1"), tls: tls)
                #expect(response.status == 202, "\(response)")
                if response.status == 202 { acknowledged.insert(payload) }
                let dtls = try await CoAP.request("post", port: gateway.dtlsPort, path: "/sensors/hall-2/temperature", payload: Array("hall-dtls-\(index)".utf8), security: SecureSetup.psk(SecureSetup.hall))
                #expect(dtls.code == "2.04", "\(dtls)")
                if dtls.code == "2.04" { acknowledged.insert("hall-dtls-\(index)") }
            }

            // hall-2 holds one DTLS session that sends a reading each second.
            let arguments = [
                "-a", "127.0.0.1", "-p", String(try LoopbackPorts.udp()), "-m", "post", "-v", "6", "-B", "40", "-G", "16",
                "-u", "hall-2", "-k", SecureSetup.hall.psk!, "-e", "held-session",
                "coaps://127.0.0.1:\(gateway.dtlsPort)/open/held",
            ]
            let session = Task {
                try await ProcessRunner.run(Tools.coapClientDTLS, arguments, timeout: .seconds(90))
            }
            try await Task.sleep(for: .seconds(3))

            // kitchen-1 disabled, hall-2 removed: the files change, nothing is signalled.
            var kitchen = SecureSetup.kitchen
            kitchen.disabled = true
            let changedAt = ContinuousClock.now
            try gateway.writeRegistry([kitchen, SecureSetup.old])

            // Until the gateway has seen the change, these are still accepted (and delivered).
            var poll = 0
            var refusedPayload = ""
            let disabled = try await eventually(timeout: .seconds(30), "kitchen-1 refused") { () -> HTTPResponse? in
                poll += 1
                let payload = "poll-\(poll)"
                let response = try await HTTP.request("POST", gateway.httpsURL("/sensors/kitchen-1/temperature"), body: Array(payload.utf8), headers: SecureSetup.bearer("tok-kitchen-1"), tls: tls)
                if response.status == 202 { acknowledged.insert(payload); return nil }
                refusedPayload = payload
                return response
            }
            #expect(disabled.status == 403, "a disabled device: \(disabled)")
            let refusedAfter = ContinuousClock.now - changedAt
            let removed = try await CoAP.attempt("post", port: gateway.dtlsPort, path: "/sensors/hall-2/temperature", payload: Array("after".utf8), wait: 5, security: SecureSetup.psk(SecureSetup.hall)).0
            #expect(removed == nil, "a removed device completed a handshake: \(String(describing: removed))")

            // The session hall-2 already held: 2.04 before, then 4.01.
            let held = try await session.value
            let codes = CoAP.finalCodes(held)
            #expect(codes.first == "2.04" && codes.last == "4.01", "codes on the held session: \(codes)")
            #expect(Set(codes).isSubset(of: ["2.04", "4.01"]), "codes on the held session: \(codes)")
            let heldAccepted = codes.filter { $0 == "2.04" }.count
            print("registry change → first refusal after \(refusedAfter); held session answers \(codes)")

            // What they queued before is still delivered.
            try await env.broker.start()
            try await env.subscriber.waitForAll(acknowledged, timeout: MosquittoBroker.afterOutage)
            let received = try await env.subscriber.settle(for: .seconds(1))
            #expect(received.filter { $0.text == "after" || $0.text == refusedPayload }.isEmpty, "a refused request was published")
            #expect(received.filter { $0.topic == "it/open/held" }.count == heldAccepted, "held-session readings: \(received.filter { $0.topic == "it/open/held" }.count) of \(heldAccepted)")
        }
    }

    @Test("SIGHUP re-reads the registry at once; a broken registry keeps the one in use and says where it is broken")
    func sighupReloads() async throws {
        let pki = try await DevicePKI.shared()
        try await EndToEnd.run("auth-sighup", settings: SecureSetup.settings(pki)) { env in
            let gateway = env.gateway
            let pid = try #require(gateway.pid)
            // A broken file: the running registry stays, the problem is logged with its place.
            try GatewayProcess.writeRegistry("devices:\n  - id: kitchen-1\n    psk: not-hex\n", to: gateway.registryFile)
            try await eventually(timeout: .seconds(30), "the broken registry reported") {
                gateway.currentLog.contains("device registry not reloaded; keeping the previous one") ? true : nil
            }
            #expect(gateway.currentLog.contains("registry.yaml:3:"), "no FILE:LINE in the log:\n\(tail(gateway.currentLog, lines: 10))")
            let stillThere = try await CoAP.request("post", port: gateway.dtlsPort, path: "/sensors/kitchen-1/temperature", payload: Array("1".utf8), security: SecureSetup.psk(SecureSetup.kitchen))
            #expect(stillThere.code == "2.04", "kitchen-1 after a broken reload: \(stillThere)")

            try gateway.writeRegistry(SecureSetup.devices)
            _ = try await eventually(timeout: .seconds(30), "the fixed registry reloaded") {
                gateway.currentLog.contains(#"registry.reason="files changed""#) ? true : nil
            }
            #expect(kill(pid, SIGHUP) == 0)
            try await eventually(timeout: .seconds(30), "the SIGHUP reload") {
                gateway.currentLog.contains("registry.reason=signal") ? true : nil
            }
            #expect(gateway.isRunning, "SIGHUP ended the gateway")
            let after = try await CoAP.request("post", port: gateway.dtlsPort, path: "/sensors/kitchen-1/temperature", payload: Array("2".utf8), security: SecureSetup.psk(SecureSetup.kitchen))
            #expect(after.code == "2.04", "\(after)")
            _ = try await env.subscriber.waitFor(count: 2)
        }
    }
}
