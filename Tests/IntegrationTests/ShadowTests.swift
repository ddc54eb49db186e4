import Foundation
import Testing

/// Shadow mappings through the real parts: coap-client and curl against the
/// gateway, the gateway against mosquitto with mutual TLS, and a shadow
/// service double on that broker that answers as AWS IoT Core does
/// (Tests/Doubles/shadow_service.py).
@Suite("Device Shadow mappings")
struct ShadowTests {
    static let mappings = """
        - name: shadow
          resource: /things/{device}/shadow
          auth: anonymous
          shadow: {thing: "{device}", timeout: 2s}
        - name: shadow-state
          resource: /things/{device}/shadow/state
          auth: anonymous
          methods: [GET]
          shadow: {thing: "{device}", answer: state}
        - name: shadow-desired
          resource: /things/{device}/shadow/desired
          auth: anonymous
          methods: [GET]
          shadow: {thing: "{device}", answer: desired}
        - name: named-shadow
          resource: /things/{device}/config
          auth: anonymous
          shadow: {thing: "{device}", name: config}
        - name: queued-shadow
          resource: /things/{device}/report
          auth: anonymous
          methods: [POST]
          shadow: {thing: "{device}", offline: queue}

        """

    static func settings() -> GatewaySettings {
        var settings = GatewaySettings()
        settings.mappings = mappings
        return settings
    }

    static func json(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    static func number(_ object: [String: Any]?, _ path: String...) -> Int? {
        var current: Any? = object
        for key in path { current = (current as? [String: Any])?[key] }
        return (current as? NSNumber)?.intValue
    }

    @Test("get, update, a stale version and no shadow, over HTTP and CoAP, for classic and named shadows")
    func getAndUpdate() async throws {
        try await EndToEnd.run("shadow", settings: Self.settings()) { env in
            let service = try await ShadowService.started(broker: env.broker, directory: env.directory)
            let http = { (path: String) in env.gateway.httpURL(path) }
            let coap = env.gateway.coapPort

            // No shadow yet: AWS's 404 becomes 404 / 4.04 with its message.
            let none = try await HTTP.request("GET", http("/things/lamp-1/shadow"))
            #expect(none.status == 404, "\(none)")
            #expect(none.text.contains("No shadow exists"), "\(none)")
            let noneCoAP = try await CoAP.request("get", port: coap, path: "/things/lamp-1/shadow")
            #expect(noneCoAP.code == "4.04", "\(noneCoAP)")

            // Reported state, as a device sends it: the gateway wraps it.
            let first = try await HTTP.request("POST", http("/things/lamp-1/shadow"), body: Array(#"{"on":true,"level":40}"#.utf8))
            #expect(first.status == 200, "\(first)")
            #expect(Self.number(Self.json(first.body), "version") == 1, "\(first)")

            // The whole document over CoAP: 2.05, JSON, what was reported.
            let document = try await CoAP.request("get", port: coap, path: "/things/lamp-1/shadow")
            #expect(document.code == "2.05", "\(document)")
            #expect(document.options.contains("Content-Format:application/json"), "\(document)")
            let parsed = Self.json(document.body)
            #expect(Self.number(parsed, "state", "reported", "level") == 40, "\(document.bodyText)")
            #expect(Self.number(parsed, "version") == 1, "\(document.bodyText)")
            #expect(parsed?["clientToken"] == nil, "the gateway's token stays inside: \(document.bodyText)")

            // A conditional update in document form over CoAP: 2.04, version 2.
            let second = try await CoAP.request(
                "put", port: coap, path: "/things/lamp-1/shadow",
                payload: Array(#"{"state":{"reported":{"level":60}},"version":1}"#.utf8), contentFormat: 50
            )
            #expect(second.code == "2.04", "\(second)")
            #expect(Self.number(Self.json(second.body), "version") == 2, "\(second.bodyText)")

            // The same version again is stale: 409 / 4.12 with AWS's message.
            let stale = Array(#"{"state":{"reported":{"level":80}},"version":1}"#.utf8)
            let conflict = try await HTTP.request("POST", http("/things/lamp-1/shadow"), body: stale)
            #expect(conflict.status == 409, "\(conflict)")
            #expect(conflict.text.contains("Version conflict"), "\(conflict)")
            let conflictCoAP = try await CoAP.request("put", port: coap, path: "/things/lamp-1/shadow", payload: stale, contentFormat: 50)
            #expect(conflictCoAP.code == "4.12", "\(conflictCoAP)")

            // An application sets desired state; the device reads its parts.
            try await env.broker.publish(
                topic: "$aws/things/lamp-1/shadow/update", payload: Array(#"{"state":{"desired":{"level":90}}}"#.utf8)
            )
            let state = try await HTTP.request("GET", http("/things/lamp-1/shadow/state"))
            #expect(state.status == 200, "\(state)")
            #expect(state.header("Content-Type") == "application/json", "\(state)")
            let stateObject = Self.json(state.body)
            #expect(Self.number(stateObject, "delta", "level") == 90, "\(state)")
            #expect(Self.number(stateObject, "reported", "level") == 60, "\(state)")
            let desired = try await CoAP.request("get", port: coap, path: "/things/lamp-1/shadow/desired")
            #expect(desired.code == "2.05", "\(desired)")
            #expect(Self.json(desired.body).map { $0.count == 1 && Self.number($0, "level") == 90 } == true, "\(desired.bodyText)")

            // A named shadow is its own document.
            let noConfig = try await CoAP.request("get", port: coap, path: "/things/lamp-1/config")
            #expect(noConfig.code == "4.04", "\(noConfig)")
            let setConfig = try await HTTP.request("POST", http("/things/lamp-1/config"), body: Array(#"{"interval":30}"#.utf8))
            #expect(setConfig.status == 200, "\(setConfig)")
            let config = try await HTTP.request("GET", http("/things/lamp-1/config"))
            #expect(Self.number(Self.json(config.body), "state", "reported", "interval") == 30, "\(config)")
            #expect(Self.number(Self.json(config.body), "version") == 1, "\(config)")

            // Refused by the gateway itself, before anything is published.
            let notJSON = try await HTTP.request("POST", http("/things/lamp-1/shadow"), body: Array("21.5".utf8))
            #expect(notJSON.status == 400, "\(notJSON)")
            let badThing = try await CoAP.request("get", port: coap, path: "/things/lamp%201/shadow")
            #expect(badThing.code == "4.00", "\(badThing)")
            #expect(badThing.diagnostic.contains("thing name"), "\(badThing)")
            let delete = try await HTTP.request("DELETE", http("/things/lamp-1/shadow"))
            #expect(delete.status == 405, "\(delete)")
            await service.stop()
        }
    }

    @Test("no answer in time is 504 / 5.04; an upstream outage is 503 / 5.03 at once, unless updates are kept for it")
    func timeoutsAndOutages() async throws {
        try await EndToEnd.run("shadow-outage", settings: Self.settings()) { env in
            // A persistent session: the kept update must not race the double's resubscription.
            let service = try await ShadowService.started(broker: env.broker, directory: env.directory, persistentSession: true)
            let http = { (path: String) in env.gateway.httpURL(path) }
            let coap = env.gateway.coapPort

            // The service stops answering: the device hears 5.04 after the mapping's 2 s.
            try await env.broker.publish(topic: "shadow-double/pause", payload: Array("1".utf8))
            let started = ContinuousClock.now
            let late = try await HTTP.request("GET", http("/things/pump-7/shadow"))
            #expect(late.status == 504, "\(late)")
            #expect(ContinuousClock.now - started >= .seconds(1.5))
            let lateCoAP = try await CoAP.request("get", port: coap, path: "/things/pump-7/shadow")
            #expect(lateCoAP.code == "5.04", "\(lateCoAP)")
            #expect(lateCoAP.diagnostic.contains("no answer"), "\(lateCoAP)")
            try await env.broker.publish(topic: "shadow-double/resume", payload: Array("1".utf8))
            let back = try await HTTP.request("POST", http("/things/pump-7/shadow"), body: Array(#"{"rpm":1200}"#.utf8))
            #expect(back.status == 200, "\(back)")

            // The broker goes away: shadow requests are refused at once, not queued.
            func count(_ line: String) -> Int { env.gateway.currentLog.components(separatedBy: line).count - 1 }
            let connects = count("upstream connected")
            try await env.broker.stop()
            try await eventually(timeout: .seconds(30), "the gateway to notice the outage") {
                count("upstream connection lost") > 0 ? true : nil
            }
            let offline = try await HTTP.request("GET", http("/things/pump-7/shadow"))
            #expect(offline.status == 503, "\(offline)")
            #expect(offline.header("Retry-After") != nil, "\(offline)")
            let offlineCoAP = try await CoAP.request("put", port: coap, path: "/things/pump-7/shadow", payload: Array(#"{"rpm":0}"#.utf8))
            #expect(offlineCoAP.code == "5.03", "\(offlineCoAP)")
            // ... except where the mapping keeps updates: queued like a reading.
            let kept = try await HTTP.request("POST", http("/things/pump-7/report"), body: Array(#"{"rpm":900}"#.utf8))
            #expect(kept.status == 202, "\(kept)")

            try await env.broker.start()
            try await eventually(timeout: MosquittoBroker.afterOutage, "the gateway to reconnect") {
                count("upstream connected") > connects ? true : nil
            }
            // The kept update reaches the service after the reconnect.
            var reported: Int?
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let now = try await HTTP.request("GET", http("/things/pump-7/shadow"))
                reported = Self.number(Self.json(now.body), "state", "reported", "rpm")
                if reported == 900 { break }
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(reported == 900, "\(service.log)")
            await service.stop()
        }
    }
}
