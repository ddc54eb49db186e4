import Foundation
import Testing

/// Every status the generated OpenAPI document lists is one a request can
/// get (issue 14: "every documented status reachable"), and no request gets
/// one it does not list.
///
/// One gateway with the contract test's configuration (OpenAPITestConfig:
/// one mapping of each kind, HTTPS with a device registry, lockouts off)
/// generates its document with `iot-gateway openapi`; then each documented
/// (operation, status) is provoked over HTTPS (curl) the way the status
/// tests provoke it, and every answer is recorded against its operation.
/// Settings the document does not depend on are tightened so the rare
/// answers come quickly: a small outbox (503), two subscriptions per
/// connection (503 for commands), a fault shim on storage writes (500) and a
/// broker whose policy refuses the gateway's subscriptions for hall-2 (502).
///
/// Not provoked: the `default` entries. The shadow and command operations
/// list `default` for an internal failure (500: the outbox cannot keep a
/// queued shadow update, `commands.sqlite` cannot be written), which a
/// request cannot cause; every other entry is a numeric status and is proved
/// here. 405 is in `components.responses` (no operation can list it): each
/// path is sent a method it does not take, and `Allow` must name its methods.
@Suite("OpenAPI reachability")
struct OpenAPIReachabilityTests {
    typealias Operation = DocumentedAPI.Operation

    static let kitchen = SecureSetup.bearer(SecureSetup.kitchen.token!)
    static let hall = SecureSetup.bearer(SecureSetup.hall.token!)
    /// old-3 is registered but disabled.
    static let disabled = SecureSetup.bearer(SecureSetup.old.token!)
    static let wrongToken = SecureSetup.bearer("not-a-token")

    // The mappings' paths, as the document writes them.
    static let temperature = "/sensors/{device}/temperature"
    static let metric = "/sensors/{device}/{metric}"
    static let open = "/open/{x}"
    static let batch = "/batch/{device}"
    static let shadow = "/things/{device}/config"
    static let commands = "/commands/{device}"

    /// A body refused by its length is answered before it is sent: without
    /// this, the gateway's 413 and close can meet curl still writing it,
    /// which then sees a broken pipe instead of the answer.
    static let expectContinue = ["Expect": "100-continue"]

    /// http.max_body's default (docs/configuration.md).
    static let maxBody = 131_072

    /// One request and its answer, with the status it was meant to get.
    struct Probe: Sendable {
        var intended: Int
        var operation: Operation
        var response: HTTPResponse
    }

    /// curl against the gateway's HTTPS ingress or its admin listener.
    struct Client: Sendable {
        var ingress: String
        var admin: String
        var tls: HTTPTLS

        func send(
            _ intended: Int, _ method: String, _ template: String, _ path: String,
            body: [UInt8]? = nil, headers: [String: String] = [:], timeout: Int = 15
        ) async throws -> Probe {
            let response = try await HTTP.request(method, ingress + path, body: body, headers: headers, timeout: timeout, tls: tls)
            return Probe(intended: intended, operation: Operation(method: method, path: template), response: response)
        }

        func sendAdmin(_ intended: Int, _ method: String, _ path: String) async throws -> Probe {
            let response = try await HTTP.request(method, admin + path)
            return Probe(intended: intended, operation: Operation(method: method, path: path), response: response)
        }
    }

    /// A publishing mapping: its path, and concrete paths for kitchen-1.
    struct Publisher {
        var template: String
        /// kitchen-1's own path (202/200).
        var own: String
        /// A path and headers that are refused with 403.
        var forbidden: (path: String, headers: [String: String])
        /// A path value sent as two segments that no mapping takes (404);
        /// nil where another mapping takes it (the document then lists no 404).
        var noMatch: String?
        /// A request the mapping refuses with 400.
        var malformed: (path: String, body: [UInt8])
        var credentials: [String: String]
        /// Headers with credentials that prove nothing (401).
        var unauthorized: [String: String]
        var body: [UInt8]
        var success: Int
    }

    static let publishers: [Publisher] = [
        Publisher(
            template: temperature, own: "/sensors/kitchen-1/temperature",
            forbidden: ("/sensors/hall-2/temperature", kitchen), noMatch: nil,
            malformed: ("/sensors/%FF/temperature", Array("1".utf8)), credentials: kitchen, unauthorized: [:],
            body: Array("21.5".utf8), success: 202
        ),
        Publisher(
            template: metric, own: "/sensors/kitchen-1/humidity",
            forbidden: ("/sensors/hall-2/humidity", kitchen), noMatch: nil,
            malformed: ("/sensors/kitchen-1/a+b", Array("1".utf8)), credentials: kitchen, unauthorized: [:],
            body: Array("48".utf8), success: 202
        ),
        Publisher(
            template: open, own: "/open/x1",
            forbidden: ("/open/x1", disabled), noMatch: "/open/a/b",
            malformed: ("/open/a+b", Array("1".utf8)), credentials: [:], unauthorized: wrongToken,
            body: Array("on".utf8), success: 200
        ),
        Publisher(
            template: batch, own: "/batch/kitchen-1",
            forbidden: ("/batch/hall-2", kitchen), noMatch: "/batch/a/b",
            malformed: ("/batch/kitchen-1", Array("not json".utf8)), credentials: kitchen, unauthorized: [:],
            body: Array("[1,2]".utf8), success: 202
        ),
    ]

    @Test("every (operation, status) the generated document lists is answered to some request, and nothing else is",
          .enabled(if: FaultShim.compiler != nil, "no C compiler (clang/cc) to build the fault-injection shim"))
    func everyDocumentedStatusIsReachable() async throws {
        let started = ContinuousClock.now
        let pki = try await DevicePKI.shared()
        var settings = OpenAPITestConfig.settings(pki: pki, devices: [SecureSetup.kitchen, SecureSetup.hall, SecureSetup.old])
        // Neither is in the document: a small outbox fills at once, two
        // subscriptions are both taken by a shadow flood.
        settings.outboxMaxMessages = 20
        settings.upstreamExtra = ["max_subscriptions: 2"]
        var trigger = ""
        try await EndToEnd.run(
            "openapi-reach", settings: settings,
            gatewayEnvironment: { directory in
                let library = try await FaultShim.build(FaultShim.pwrite(.fail), named: "fault", in: directory)
                trigger = directory.file("fail-writes")
                return ["LD_PRELOAD": library, FaultShim.triggerVariable: trigger]
            },
            makeBroker: { certificates, directory in
                // hall-2's shadow and command subscriptions are refused (502).
                try PolicyBroker.make(certificates: certificates, directory: directory, refused: ["$aws/things/hall-2/#", "cmd/hall-2/#"])
            }
        ) { env in
            let gateway = env.gateway
            let service = try await ShadowService.started(broker: env.broker, directory: env.directory)
            let api = try await DocumentedAPI.generate(for: gateway, in: env.directory)
            let client = Client(
                ingress: gateway.httpsURL(""), admin: gateway.adminURL(""), tls: HTTPTLS(trust: pki.serverCA)
            )
            var probes: [Probe] = []

            // MARK: Admin, and 405 on every path
            probes.append(try await client.sendAdmin(200, "GET", "/healthz"))
            probes.append(try await client.sendAdmin(200, "GET", "/readyz"))
            probes.append(try await client.sendAdmin(200, "GET", "/metrics"))
            for path in ["/healthz", "/readyz", "/metrics"] {
                probes.append(try await client.sendAdmin(405, "POST", path))
            }
            let concrete = [
                Self.temperature: "/sensors/kitchen-1/temperature", Self.metric: "/sensors/kitchen-1/humidity", Self.open: "/open/x1",
                Self.batch: "/batch/kitchen-1", Self.shadow: "/things/kitchen-1/config", Self.commands: "/commands/kitchen-1",
            ]
            for (template, path) in concrete.sorted(by: { $0.key < $1.key }) {
                probes.append(try await client.send(405, "DELETE", template, path, headers: Self.kitchen))
            }

            // MARK: Shadow (the double answers as AWS does)
            let own = "/things/kitchen-1/config"
            let report = Array(#"{"on":true}"#.utf8)
            probes.append(try await client.send(404, "GET", Self.shadow, own, headers: Self.kitchen))  // no shadow yet
            probes.append(try await client.send(200, "POST", Self.shadow, own, body: report, headers: Self.kitchen))
            probes.append(try await client.send(200, "PUT", Self.shadow, own, body: Array(#"{"state":{"reported":{"on":false}},"version":1}"#.utf8), headers: Self.kitchen))
            probes.append(try await client.send(200, "GET", Self.shadow, own, headers: Self.kitchen))
            probes.append(try await client.send(204, "GET", Self.shadow, own + "?wait=1", headers: Self.kitchen))  // no change comes
            let padding = #"{"pad":""# + String(repeating: "a", count: 9000) + #""}"#
            for method in ["PUT", "POST"] {
                let stale = Array(#"{"state":{"reported":{"on":true}},"version":1}"#.utf8)
                probes.append(try await client.send(409, method, Self.shadow, own, body: stale, headers: Self.kitchen))
                probes.append(try await client.send(400, method, Self.shadow, own, body: Array("21.5".utf8), headers: Self.kitchen))
                probes.append(try await client.send(413, method, Self.shadow, own, body: Array(padding.utf8), headers: Self.kitchen.merging(Self.expectContinue) { $1 }))
            }
            probes.append(try await client.send(400, "GET", Self.shadow, own + "?wait=0", headers: Self.kitchen))
            for method in ["GET", "PUT", "POST"] {
                let body = method == "GET" ? nil : report
                probes.append(try await client.send(401, method, Self.shadow, own, body: body))
                probes.append(try await client.send(403, method, Self.shadow, "/things/hall-2/config", body: body, headers: Self.kitchen))
                probes.append(try await client.send(404, method, Self.shadow, "/things/a/b/config", body: body, headers: Self.kitchen))
                // The broker refuses the gateway's subscription for hall-2's answers.
                probes.append(try await client.send(502, method, Self.shadow, "/things/hall-2/config", body: body, headers: Self.hall))
            }

            // MARK: Commands
            let mailbox = "/commands/kitchen-1"
            probes.append(try await client.send(204, "GET", Self.commands, mailbox, headers: Self.kitchen))  // followed from now on
            // Until the gateway's subscription is in place a command is not
            // seen: publish, poll, again.
            probes.append(try await eventually(timeout: .seconds(20), interval: .milliseconds(10), "a command at kitchen-1's long-poll") { () -> Probe? in
                try await env.broker.publish(topic: "cmd/kitchen-1/reboot", payload: Array(#"{"now":true}"#.utf8))
                let poll = try await client.send(200, "GET", Self.commands, mailbox + "?wait=2", headers: Self.kitchen)
                return poll.response.status == 200 ? poll : nil
            })
            probes.append(try await client.send(400, "GET", Self.commands, mailbox + "?wait=0", headers: Self.kitchen))
            probes.append(try await client.send(401, "GET", Self.commands, mailbox))
            probes.append(try await client.send(403, "GET", Self.commands, "/commands/hall-2", headers: Self.kitchen))
            probes.append(try await client.send(404, "GET", Self.commands, "/commands/a/b", headers: Self.kitchen))
            probes.append(try await client.send(502, "GET", Self.commands, "/commands/hall-2?wait=5", headers: Self.hall))

            // MARK: Readings, each method of each publishing mapping
            for publisher in Self.publishers {
                for method in api.methods[publisher.template, default: []].sorted() {
                    let p = publisher
                    probes.append(try await client.send(p.success, method, p.template, p.own, body: p.body, headers: p.credentials))
                    probes.append(try await client.send(401, method, p.template, p.own, body: p.body, headers: p.unauthorized))
                    probes.append(try await client.send(403, method, p.template, p.forbidden.path, body: p.body, headers: p.forbidden.headers))
                    if let noMatch = p.noMatch {
                        probes.append(try await client.send(404, method, p.template, noMatch, body: p.body, headers: p.credentials))
                    }
                    probes.append(try await client.send(400, method, p.template, p.malformed.path, body: p.malformed.body, headers: p.credentials))
                    let tooLarge = [UInt8](repeating: UInt8(ascii: "7"), count: Self.maxBody + 1)
                    probes.append(try await client.send(413, method, p.template, p.own, body: tooLarge, headers: p.credentials.merging(Self.expectContinue) { $1 }))
                    if api.statuses[Operation(method: method, path: p.template)]?.contains(415) == true {
                        var headers = p.credentials
                        headers["Content-Type"] = "image/png"
                        probes.append(try await client.send(415, method, p.template, p.own, body: p.body, headers: headers))
                    }
                }
            }

            // MARK: 500: storage writes fail
            _ = FileManager.default.createFile(atPath: trigger, contents: nil)
            for publisher in Self.publishers {
                for method in api.methods[publisher.template, default: []].sorted() {
                    probes.append(try await client.send(500, method, publisher.template, publisher.own, body: publisher.body, headers: publisher.credentials))
                }
            }
            // A failed commit leaves the outbox not taking writes until one succeeds.
            probes.append(try await client.sendAdmin(503, "GET", "/readyz"))
            try FileManager.default.removeItem(atPath: trigger)
            try await eventually(timeout: .seconds(20), interval: .milliseconds(200), "the gateway to take readings again") { () -> Bool? in
                try await client.send(202, "POST", Self.temperature, "/sensors/kitchen-1/temperature", body: Array("1".utf8), headers: Self.kitchen)
                    .response.status == 202 ? true : nil
            }

            // MARK: Shadow flood: 10 requests wait for a silent service
            try await service.pause()
            let flood = ["GET", "GET", "GET", "GET", "PUT", "PUT", "PUT", "POST", "POST", "POST"]
            async let waited: [Probe] = withThrowingTaskGroup(of: Probe.self) { group in
                for method in flood {
                    group.addTask {
                        try await client.send(504, method, Self.shadow, own, body: method == "GET" ? nil : report, headers: Self.kitchen)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await eventually(timeout: .seconds(20), "10 shadow requests unanswered by the paused double") {
                service.log.components(separatedBy: "paused, no answer to").count - 1 >= flood.count ? true : nil
            }
            for method in ["GET", "PUT", "POST"] {
                probes.append(try await client.send(429, method, Self.shadow, own, body: method == "GET" ? nil : report, headers: Self.kitchen))
            }
            // Both subscriptions of the connection serve the flood: none for commands.
            probes.append(try await client.send(503, "GET", Self.commands, mailbox, headers: Self.kitchen))
            probes += try await waited
            try await service.resume()

            // MARK: Upstream down: shadows refused, the outbox fills
            func lost() -> Int { gateway.currentLog.components(separatedBy: "upstream connection lost").count - 1 }
            let before = lost()
            try await env.broker.stop()
            try await eventually(timeout: .seconds(30), "the gateway to notice the outage") { lost() > before ? true : nil }
            for method in ["GET", "PUT", "POST"] {
                probes.append(try await client.send(503, method, Self.shadow, own, body: method == "GET" ? nil : report, headers: Self.kitchen))
            }
            // ack: delivered waits for a PUBACK that cannot come (ack_timeout 5 s).
            func queued() async throws -> Double {
                try await PrometheusSamples.scrape(gateway).value("iotgw_outbox_messages", ["qos": "1"]) ?? -1
            }
            let queuedBefore = try await queued()
            let openMethods = api.methods[Self.open, default: []].sorted()
            async let unacknowledged: [Probe] = withThrowingTaskGroup(of: Probe.self) { group in
                for method in openMethods {
                    group.addTask { try await client.send(504, method, Self.open, "/open/late", body: Array("late".utf8), timeout: 30) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await eventually(timeout: .seconds(20), "the unacknowledged messages in the outbox") {
                try await queued() >= queuedBefore + Double(openMethods.count) ? true : nil
            }
            let full = try await eventually(timeout: .seconds(30), interval: .milliseconds(1), "the outbox to fill") { () -> Probe? in
                let probe = try await client.send(503, "POST", Self.temperature, "/sensors/kitchen-1/temperature", body: Array("1".utf8), headers: Self.kitchen)
                if probe.response.status == 202 { return nil }
                return probe
            }
            probes.append(full)
            for publisher in Self.publishers {
                for method in api.methods[publisher.template, default: []].sorted() {
                    probes.append(try await client.send(503, method, publisher.template, publisher.own, body: publisher.body, headers: publisher.credentials))
                }
            }
            probes += try await unacknowledged
            await service.stop()

            let findings = Self.findings(api, probes)
            let elapsed = ContinuousClock.now - started
            print("OpenAPI reachability: \(Self.proven(api, probes).count) documented (operation, status) pairs observed in \(elapsed):\n"
                  + Self.proven(api, probes).joined(separator: "\n"))
            #expect(findings.isEmpty, "\(findings.joined(separator: "\n"))")
        }
    }

    /// Documented pairs some request got, as `METHOD /path status`.
    static func proven(_ api: DocumentedAPI, _ probes: [Probe]) -> [String] {
        let seen = Set(probes.map { "\($0.operation) \($0.response.status)" })
        return api.pairs.map { "\($0.0) \($0.1)" }.filter(seen.contains)
    }

    /// Everything wrong: documented pairs never observed, observed statuses
    /// not documented, documented headers missing, 405s without the right
    /// `Allow`, and probes that did not get the status they were meant to.
    static func findings(_ api: DocumentedAPI, _ probes: [Probe]) -> [String] {
        var findings: [String] = []
        var seen: [Operation: Set<Int>] = [:]
        var methodNotAllowed: Set<String> = []
        for probe in probes {
            let operation = probe.operation, response = probe.response, status = response.status
            seen[operation, default: []].insert(status)
            if probe.intended != status {
                findings.append("probe for \(operation) \(probe.intended) got \(response)")
            }
            if status == 405 {
                guard let methods = api.methods[operation.path], !methods.contains(operation.method), api.documentsMethodNotAllowed else {
                    findings.append("undocumented: \(operation) 405 (\(response))")
                    continue
                }
                methodNotAllowed.insert(operation.path)
                // The admin listener also takes HEAD, which its paths do not list.
                let expected = api.tags[Operation(method: "GET", path: operation.path)] == ["admin"] ? methods.union(["HEAD"]) : methods
                let allow = Set((response.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() })
                if allow != expected {
                    findings.append("\(operation) 405: Allow is \(allow.sorted()), the document lists \(expected.sorted())")
                }
                continue
            }
            guard api.statuses[operation]?.contains(status) == true else {
                findings.append("undocumented: \(operation) \(status) (\(response))")
                continue
            }
            for name in api.headers[operation]?[status] ?? [] where response.header(name) == nil {
                findings.append("\(operation) \(status) without its documented header \(name): \(response)")
            }
        }
        // The `default` entries are excepted only because they stand for an
        // internal failure of a shadow or command operation (see the suite).
        for operation in api.defaults.sorted() where !(api.tags[operation] ?? []).contains(where: { ["shadows", "commands"].contains($0) }) {
            findings.append("\(operation) lists `default`, which only shadow and command operations are expected to")
        }
        for (operation, status) in api.pairs where seen[operation]?.contains(status) != true {
            findings.append("never observed: \(operation) \(status)")
        }
        for path in api.methods.keys.sorted() where !methodNotAllowed.contains(path) {
            findings.append("never observed: 405 for a method \(path) does not take")
        }
        return findings
    }
}
