import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP under load: the mapping table is swapped whole while HTTP and
/// CoAP requests keep arriving. Each request is routed entirely by the table
/// before or the table after; what was accepted is delivered once, on the
/// topic its table gave it; a broken file changes nothing.
@Suite("Reload of mappings")
struct ReloadTests {
    /// Table 1: a, b, c. Table 2: a unchanged, b removed, c to a new topic, d added.
    static let table1 = mappingFile([("a", "rl/a"), ("b", "rl/b"), ("c", "rl/c")])
    static let table2 = mappingFile([("d", "rl/d"), ("a", "rl/a"), ("c", "rl/c2")])
    /// Table 2 with an error on line 17 (`qos: 7`).
    static let broken = table2 + """
          - name: reload-e
            resource: /r/e/{device}
            auth: anonymous
            qos: 7
            topic: rl/e/{device}

        """
    static let brokenLine = 17

    static func mappingFile(_ entries: [(letter: String, topic: String)]) -> String {
        "mappings:\n" + entries.map { entry in
            """
              - name: reload-\(entry.letter)
                resource: /r/\(entry.letter)/{device}
                auth: anonymous
                topic: \(entry.topic)/{device}

            """
        }.joined()
    }

    /// Where each letter goes under each table; nil: 4.04 / 404.
    static let routes1: [String: String] = ["a": "rl/a", "b": "rl/b", "c": "rl/c"]
    static let routes2: [String: String] = ["a": "rl/a", "c": "rl/c2", "d": "rl/d"]

    struct Outcome: Sendable {
        var id: String
        var letter: String
        var accepted: Bool
        var status: String
        var started: ContinuousClock.Instant
        var ended: ContinuousClock.Instant
    }

    /// Requests answered so far, from both load loops.
    actor Ledger {
        var outcomes: [Outcome] = []
        var stopped = false
        func add(_ new: [Outcome]) { outcomes += new }
        func stop() { stopped = true }
    }

    @Test("SIGHUP under load: a mapping added, one removed, one changed; every 2.04/202 delivered as its table said; a broken file keeps the running table")
    func reloadUnderLoad() async throws {
        let maps = try TemporaryDirectory("reload-maps")
        defer { maps.remove() }
        let mapDirectory = try maps.subdirectory("mappings.d")
        let mapFile = mapDirectory + "/reload.yaml"
        try Self.table1.write(toFile: mapFile, atomically: true, encoding: .utf8)
        var settings = GatewaySettings()
        settings.extraYAML = "mapping_files: [\"\(mapDirectory)/*.yaml\"]\n"

        try await EndToEnd.run("reload", settings: settings) { env in
            let gateway = env.gateway
            let pid = try #require(gateway.pid)
            let ledger = Ledger()
            let letters = ["a", "b", "c", "d"]
            let httpBase = gateway.httpURL("/r/")
            let coapPort = gateway.coapPort

            let httpLoad = Task {
                var next = 0
                while await !ledger.stopped {
                    let batch = (0..<8).map { offset -> (String, String) in
                        let number = next + offset
                        return (letters[number % letters.count], "h\(number)")
                    }
                    next += batch.count
                    let started = ContinuousClock.now
                    let results = try await HTTP.postMany(batch.map { httpBase + "\($0.0)/\($0.1)" }, body: Array("x".utf8))
                    let ended = ContinuousClock.now
                    await ledger.add(zip(batch, results).map { request, result in
                        Outcome(id: request.1, letter: request.0, accepted: result.status == 202, status: "\(result.status)",
                                started: started, ended: ended)
                    })
                }
            }
            let coapLoad = Task {
                var number = 0
                while await !ledger.stopped {
                    let letter = letters[number % letters.count], id = "c\(number)"
                    number += 1
                    let started = ContinuousClock.now
                    let response = try await CoAP.post(port: coapPort, path: "/r/\(letter)/\(id)", payload: Array("x".utf8))
                    await ledger.add([Outcome(id: id, letter: letter, accepted: response.code == "2.04", status: response.code,
                                              started: started, ended: .now)])
                }
            }

            /// Each phase lasts until both protocols have had requests
            /// answered in it: fixed sleeps are too short on a loaded machine.
            func waitForTraffic(since start: ContinuousClock.Instant, _ phase: String) async throws {
                try await eventually(timeout: .seconds(90), "requests answered \(phase)") {
                    let answered = await ledger.outcomes.filter { $0.started > start }
                    let http = answered.filter { $0.id.hasPrefix("h") }.count
                    let coap = answered.count - http
                    return http >= 8 && coap >= 4 ? true : nil
                }
            }

            try await waitForTraffic(since: .now - .seconds(3600), "before the reload")
            try Self.table2.write(toFile: mapFile, atomically: true, encoding: .utf8)
            let hangup = ContinuousClock.now
            kill(pid, SIGHUP)
            try await eventually(timeout: .seconds(20), "'mappings reloaded' in the gateway log") {
                gateway.currentLog.contains("mappings reloaded") ? true : nil
            }
            let reloaded = ContinuousClock.now
            let reloadLine = gateway.currentLog.split(separator: "\n").first { $0.contains("mappings reloaded") } ?? ""
            // Only mappings changed: no section is said to wait for a restart.
            #expect(!gateway.currentLog.contains("wait for a restart"), "\(gateway.currentLog)")
            // The standard mappings beside them did not change.
            #expect(reloadLine.contains("mappings.added=reload-d") && reloadLine.contains("mappings.removed=reload-b")
                    && reloadLine.contains("mappings.changed=reload-c "), "\(reloadLine)")

            try await waitForTraffic(since: reloaded, "after the reload")
            try Self.broken.write(toFile: mapFile, atomically: true, encoding: .utf8)
            kill(pid, SIGHUP)
            try await eventually(timeout: .seconds(20), "'reload refused' in the gateway log") {
                gateway.currentLog.contains("reload refused") ? true : nil
            }
            let refusal = gateway.currentLog.split(separator: "\n").first { $0.contains("reload refused") } ?? ""
            #expect(refusal.contains("\(mapFile):\(Self.brokenLine):"), "\(refusal)")
            let refused = ContinuousClock.now
            try await waitForTraffic(since: refused, "after the refused reload")
            await ledger.stop()
            try await httpLoad.value
            try await coapLoad.value
            #expect(gateway.isRunning)

            let outcomes = await ledger.outcomes
            let accepted = outcomes.filter(\.accepted)
            let received = try await env.subscriber.waitUntil(timeout: .seconds(60), "\(accepted.count) reload messages") {
                $0.filter { $0.topic.hasPrefix("rl/") }.count >= accepted.count
            }.filter { $0.topic.hasPrefix("rl/") }

            var topicsByID: [String: [String]] = [:]
            for message in received {
                let id = String(message.topic.split(separator: "/").last ?? "")
                topicsByID[id, default: []].append(message.topic)
            }
            var phases = [String: Int]()
            for outcome in outcomes {
                // Which tables may have routed it: before the SIGHUP only the
                // first, after the reload was logged only the second.
                var tables: [[String: String]] = []
                if outcome.started < reloaded { tables.append(Self.routes1) }
                if outcome.ended > hangup { tables.append(Self.routes2) }
                let phase = outcome.ended < hangup ? "before" : outcome.started > refused ? "after-broken" : outcome.started > reloaded ? "after" : "during"
                phases[phase + "-" + String(outcome.id.prefix(1)), default: 0] += 1
                let allowed = tables.map { $0[outcome.letter].map { "\($0)/\(outcome.id)" } }
                let topics = topicsByID[outcome.id] ?? []
                if outcome.accepted {
                    #expect(topics.count == 1 && allowed.contains(topics.first), "\(outcome.id) on /r/\(outcome.letter) (\(phase)) accepted, delivered as \(topics), allowed \(allowed)")
                } else {
                    #expect(["404", "4.04"].contains(outcome.status) && allowed.contains(nil),
                            "\(outcome.id) on /r/\(outcome.letter) (\(phase)) answered \(outcome.status), allowed \(allowed)")
                    #expect(topics.isEmpty, "\(outcome.id) was refused but delivered as \(topics)")
                }
            }
            let answered = Set(outcomes.map(\.id))
            #expect(topicsByID.keys.allSatisfy(answered.contains), "delivered messages nobody was told were accepted")
            for phase in ["before", "after", "after-broken"] {
                #expect(phases[phase + "-h", default: 0] >= 4 && phases[phase + "-c", default: 0] >= 2,
                        "too few requests \(phase) the reload to tell anything: \(phases)")
            }
        }
    }
}
