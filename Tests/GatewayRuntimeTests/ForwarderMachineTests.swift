import Foundation
import GatewayCore
import GatewayStore
import Testing
@testable import GatewayRuntime

/// The forwarder's decisions, event by event: no threads, sockets or
/// sleeps. Time is a number the test moves.
@Suite("ForwarderMachine")
struct ForwarderMachineTests {
    typealias Machine = ForwarderMachine

    static let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    static func row(_ id: Int64, qos: QoS = .atLeastOnce, at offset: Double? = nil, expiresIn: Double? = nil) -> StoredMessage {
        StoredMessage(id: id, message: message("r/\(id)", qos: qos, at: offset ?? Double(id), expiresIn: expiresIn))
    }

    static func entry(_ sequence: UInt64, at offset: Double, expiresIn: Double? = nil) -> VolatileEntry {
        VolatileEntry(sequence: sequence, message: message("v/\(sequence)", qos: .atMostOnce, at: offset, expiresIn: expiresIn))
    }

    static func message(_ topic: String, qos: QoS, at offset: Double, expiresIn: Double?) -> OutboundMessage {
        OutboundMessage(
            topic: topic, qos: qos, retain: false, payload: [1, 2, 3], receivedAt: epoch.addingTimeInterval(offset), mapping: "m",
            expiresAt: expiresIn.map { epoch.addingTimeInterval(offset + $0) }
        )
    }

    /// Drives one round of publishing the way `Forwarder` does, with rows
    /// from `source` and a client that hands out message IDs (or says
    /// `.notConnected` once `connectedFor` publishes went out).
    struct Driver {
        var machine: Machine
        var source: [StoredMessage] = []
        var volatile: [VolatileEntry] = []
        var nextID: Int32 = 1
        /// Message ID → what was handed over.
        var published: [(id: Int32, key: MessageKey)] = []
        var actions: [Machine.Action] = []
        var clientConnected = true
        var now = 100.0
        var wallNow = ForwarderMachineTests.epoch.addingTimeInterval(1_000)

        init(_ configuration: Machine.Configuration) {
            machine = Machine(configuration)
        }

        mutating func send(_ event: Machine.Event) {
            actions += machine.handle(event, now: now)
        }

        /// One publishing round; returns the keys handed to the client.
        @discardableResult
        mutating func round() -> [MessageKey] {
            guard let demand = machine.demand(now: now) else { return [] }
            let retried = source.filter { demand.retry.contains($0.id) }
            let rows = Array(source.filter { $0.id > demand.after }.prefix(demand.fresh))
            let batch = machine.offer(retried: retried, rows: rows, volatile: Array(volatile.prefix(demand.fresh)), for: demand)
            var handed: [MessageKey] = []
            loop: for candidate in batch {
                switch machine.decide(candidate, now: now, wallNow: wallNow) {
                case .expire: continue
                case .hold: break loop
                case .publish:
                    let outcome: PublishOutcome
                    if clientConnected {
                        outcome = .inFlight(messageID: nextID)
                        published.append((nextID, candidate.key))
                        handed.append(candidate.key)
                        nextID += 1
                    } else {
                        outcome = .notConnected
                    }
                    actions += machine.outcome(candidate, outcome, now: now)
                    if !machine.mayContinue { break loop }
                }
            }
            actions += machine.endBatch()
            // What the outbox would do: consumed QoS 0 entries leave its queue.
            for case .consumeQoS0(let through) in actions { volatile.removeAll { $0.sequence <= through } }
            return handed
        }

        mutating func takeActions() -> [Machine.Action] {
            defer { actions = [] }
            return actions
        }

        func id(of key: MessageKey) -> Int32 { published.last { $0.key == key }!.id }
    }

    // MARK: Connection

    @Test("nothing is demanded before the first .connected; then the whole handover window")
    func connectedOpensTheWindow() {
        var driver = Driver(.init(window: 4, prefetch: 2))
        driver.source = (1...10).map { Self.row($0) }
        #expect(driver.machine.demand(now: driver.now) == nil)
        driver.send(.connected)
        #expect(driver.takeActions() == [.connection(up: true)])
        #expect(driver.round() == (1...6).map { .row($0) })
        #expect(driver.machine.demand(now: driver.now) == nil, "window 4 + prefetch 2 are in flight")
    }

    @Test("a PUBACK frees its slot at once and hands the row back for deletion")
    func pubackFreesTheSlot() {
        var driver = Driver(.init(window: 2, prefetch: 0))
        driver.source = (1...5).map { Self.row($0) }
        driver.send(.connected)
        driver.round()
        _ = driver.takeActions()
        driver.send(.published(messageID: driver.id(of: .row(1))))
        let actions = driver.takeActions()
        #expect(actions.count == 2)
        #expect(actions.first == .delete([.init(id: 1, size: Self.row(1).message.storedSize)], expired: false))
        if case .delivered(let entries) = actions.last { #expect(entries.map(\.key) == [.row(1)]) } else { Issue.record("no .delivered: \(actions)") }
        // No deletion has committed, and yet the next row goes out.
        #expect(driver.machine.unsettled == 1)
        #expect(driver.round() == [.row(3)])
    }

    @Test("owed deletions are capped: in flight plus unsettled never exceed window + maxUnsettled")
    func owedDeletionsAreCapped() {
        var driver = Driver(.init(window: 2, prefetch: 2, maxUnsettled: 3))
        driver.source = (1...40).map { Self.row($0) }
        driver.send(.connected)
        func acknowledgeAll(_ driver: inout Driver) {
            for (id, _) in driver.published where driver.machine.inFlight[id] != nil { driver.send(.published(messageID: id)) }
        }
        #expect(driver.round().count == 4, "the handover window")
        acknowledgeAll(&driver)
        #expect(driver.machine.unsettled == 4)
        // 4 owed of the 2 + 3 allowed: one more may go out.
        #expect(driver.round() == [.row(5)])
        acknowledgeAll(&driver)
        #expect(driver.machine.unsettled == 5)
        #expect(driver.machine.demand(now: driver.now) == nil)
        #expect(!driver.machine.canPublish(now: driver.now))
        // A commit settles 3 of them: 3 slots come back.
        driver.send(.settled(count: 3))
        #expect(driver.round() == [.row(6), .row(7), .row(8)])
        #expect(driver.machine.inFlight.count + driver.machine.unsettled == 5)
    }

    @Test("a disconnect drops QoS 0 in flight (counted) and leaves QoS 1 with the client; the reconnect counts its resends")
    func disconnectAndReconnect() {
        var driver = Driver(.init(window: 5))
        driver.source = [Self.row(1, at: 1)]
        driver.volatile = [Self.entry(1, at: 2)]
        driver.send(.connected)
        #expect(driver.round() == [.row(1), .volatile(1)])
        _ = driver.takeActions()
        driver.send(.disconnected)
        #expect(driver.takeActions() == [.connection(up: false), .dropped(reason: "offline", qos: .atMostOnce, count: 1)])
        #expect(driver.machine.inFlight.count == 1)
        #expect(driver.machine.demand(now: driver.now) == nil)
        driver.send(.connected)
        #expect(driver.takeActions() == [.resent(count: 1), .connection(up: true)])
        // The client's resend is acknowledged under its old ID; nothing is published again.
        #expect(driver.round() == [])
        driver.send(.published(messageID: driver.id(of: .row(1))))
        #expect(driver.takeActions().first == .delete([.init(id: 1, size: Self.row(1).message.storedSize)], expired: false))
    }

    @Test("a publish refused for want of a connection is not taken: it goes first after .connected")
    func notConnectedIsNotTaken() {
        var driver = Driver(.init(window: 5))
        driver.source = (1...3).map { Self.row($0) }
        driver.send(.connected)
        driver.clientConnected = false
        #expect(driver.round() == [])
        #expect(driver.machine.cursor == 0)
        #expect(driver.machine.demand(now: driver.now) == nil)
        driver.clientConnected = true
        driver.send(.connected)
        #expect(driver.round() == [.row(1), .row(2), .row(3)])
    }

    // MARK: Refusals

    @Test("a transient refusal pauses 1 s, then 2 s, and sends the row again before anything new")
    func transientRefusal() {
        var driver = Driver(.init(window: 1, prefetch: 0))
        driver.source = (1...2).map { Self.row($0) }
        driver.send(.connected)
        driver.round()
        _ = driver.takeActions()
        driver.send(.refused(messageID: driver.id(of: .row(1)), code: 0x97, reason: "quota", transient: true))
        #expect(driver.takeActions() == [.pausing(code: 0x97, reason: "quota", pause: 1, topic: "r/1", mapping: "m")])
        #expect(driver.machine.retry == [1])
        driver.now += 0.99
        #expect(driver.round() == [])
        driver.now += 0.02
        #expect(driver.round() == [.row(1)])
        #expect(driver.machine.retry.isEmpty)
        driver.send(.refused(messageID: driver.id(of: .row(1)), code: 0x97, reason: "quota", transient: true))
        #expect(driver.takeActions() == [.pausing(code: 0x97, reason: "quota", pause: 2, topic: "r/1", mapping: "m")])
        driver.now += 2.01
        #expect(driver.round() == [.row(1)])
        driver.send(.published(messageID: driver.id(of: .row(1))))
        #expect(driver.round() == [.row(2)])
        // After 30 s without one, the pause starts at 1 s again.
        driver.now += 31
        driver.send(.refused(messageID: driver.id(of: .row(2)), code: 0x89, reason: "busy", transient: true))
        #expect(driver.takeActions().last == .pausing(code: 0x89, reason: "busy", pause: 1, topic: "r/2", mapping: "m"))
    }

    @Test("a permanent refusal drops the message and deletes its row")
    func permanentRefusal() {
        var driver = Driver(.init(window: 5))
        driver.source = [Self.row(1)]
        driver.send(.connected)
        driver.round()
        _ = driver.takeActions()
        driver.send(.refused(messageID: driver.id(of: .row(1)), code: 0x87, reason: "not authorized", transient: false))
        #expect(driver.takeActions() == [
            .refusedForGood(code: 0x87, reason: "not authorized", qos: .atLeastOnce, topic: "r/1", mapping: "m"),
            .delete([.init(id: 1, size: Self.row(1).message.storedSize)], expired: false),
        ])
        #expect(driver.machine.retry.isEmpty)
        #expect(driver.machine.inFlight.isEmpty)
    }

    @Test("a message the client can never send is dropped, its row deleted, and the rest flow")
    func rejectedByTheClient() {
        var machine = Machine(.init(window: 5))
        _ = machine.handle(.connected, now: 0)
        let demand = machine.demand(now: 0)!
        let batch = machine.offer(retried: [], rows: [Self.row(1), Self.row(2)], volatile: [], for: demand)
        #expect(machine.decide(batch[0], now: 0, wallNow: Self.epoch) == .publish(expiresIn: nil))
        let actions = machine.outcome(batch[0], .rejected(reason: "topic too long"), now: 0)
        #expect(actions == [
            .rejected(topic: "r/1", mapping: "m", reason: "topic too long", qos: .atLeastOnce),
            .delete([.init(id: 1, size: Self.row(1).message.storedSize)], expired: false),
        ])
        #expect(machine.mayContinue)
        #expect(machine.cursor == 1)
    }

    // MARK: Expiry and rate limits

    @Test("expired rows and QoS 0 entries are dropped unsent: rows deleted as expired, entries counted and consumed")
    func expiry() {
        var driver = Driver(.init(window: 10))
        driver.wallNow = Self.epoch.addingTimeInterval(10)
        driver.source = [Self.row(1, at: 1, expiresIn: 1), Self.row(2, at: 2, expiresIn: 60)]
        driver.volatile = [Self.entry(1, at: 1.5, expiresIn: 1)]
        driver.send(.connected)
        _ = driver.takeActions()
        #expect(driver.round() == [.row(2)])
        let actions = driver.takeActions()
        #expect(actions.contains(.consumeQoS0(through: 1)))
        #expect(actions.contains(.delete([.init(id: 1, size: Self.row(1).message.storedSize)], expired: true)))
        #expect(actions.contains(.expiredQoS0(count: 1)))
        #expect(driver.machine.cursor == 2)
    }

    @Test("the MQTT 5 expiry left is passed on, rounded up, at least 1 s")
    func expiryLeftIsPassedOn() {
        var machine = Machine(.init(window: 5))
        let candidate = Machine.Candidate(key: .row(1), message: Self.message("t", qos: .atLeastOnce, at: 0, expiresIn: 10))
        #expect(machine.decide(candidate, now: 0, wallNow: Self.epoch.addingTimeInterval(2.5)) == .publish(expiresIn: 8))
        #expect(machine.decide(candidate, now: 0, wallNow: Self.epoch.addingTimeInterval(9.9)) == .publish(expiresIn: 1))
    }

    @Test("over the publish rate the batch stops, and nothing is demanded until the limiter allows")
    func rateLimit() {
        var driver = Driver(.init(window: 10, publishRate: 2))
        driver.source = (1...5).map { Self.row($0) }
        driver.send(.connected)
        #expect(driver.round() == [.row(1)])
        let until = driver.machine.throttledUntil
        #expect(until != nil)
        #expect(driver.machine.demand(now: driver.now) == nil)
        #expect(driver.machine.wake(now: driver.now).deadline == until)
        driver.now = until!
        #expect(driver.round() == [.row(2)])
    }

    // MARK: Merging and waking

    @Test("QoS 1 rows and QoS 0 entries go out in acceptance order, a row first on a tie")
    func mergeOrder() {
        var driver = Driver(.init(window: 10))
        driver.source = [Self.row(1, at: 1), Self.row(2, at: 3)]
        driver.volatile = [Self.entry(1, at: 1), Self.entry(2, at: 2), Self.entry(3, at: 4)]
        driver.send(.connected)
        #expect(driver.round() == [.row(1), .volatile(1), .volatile(2), .row(2), .volatile(3)])
    }

    @Test("when a read came back short it waits for .newMessages instead of reading again")
    func newMessagesReopensDemand() {
        var driver = Driver(.init(window: 10))
        driver.source = [Self.row(1)]
        driver.send(.connected)
        driver.round()
        #expect(driver.machine.demand(now: driver.now) == nil)
        #expect(!driver.machine.canPublish(now: driver.now))
        driver.source.append(Self.row(2))
        driver.send(.newMessages)
        #expect(driver.machine.canPublish(now: driver.now))
        #expect(driver.round() == [.row(2)])
    }

    @Test("PUBACKs wake the forwarder one by one until the client holds a queue, then in batches with a short linger")
    func wakeThreshold() {
        var driver = Driver(.init(window: 4, prefetch: 4))
        driver.source = (1...20).map { Self.row($0) }
        driver.send(.connected)
        #expect(driver.machine.wake(now: driver.now) == .init(deadline: nil, acks: 1))
        driver.round()
        // 8 handed over, 4 on the wire, 4 queued in the client: wake after 2.
        #expect(driver.machine.wake(now: driver.now) == .init(deadline: driver.now + Machine.ackLinger, acks: 2))
    }

    // MARK: Stopping

    @Test("stop publishes nothing more, waits for the PUBACKs in flight, and ends when they are in")
    func stopDrains() {
        var driver = Driver(.init(window: 5))
        driver.source = (1...3).map { Self.row($0) }
        driver.send(.connected)
        driver.round()
        driver.source.append(Self.row(4))
        driver.send(.newMessages)
        driver.send(.stop(drainFor: 5))
        #expect(driver.machine.demand(now: driver.now) == nil)
        #expect(!driver.machine.isFinished(now: driver.now))
        #expect(driver.machine.wake(now: driver.now) == .init(deadline: driver.now + 5, acks: 1))
        for id in 1...3 { driver.send(.published(messageID: Int32(id))) }
        #expect(driver.machine.isFinished(now: driver.now))
    }

    @Test("stop ends at the drain deadline with PUBACKs outstanding, or at once when disconnected")
    func stopGivesUp() {
        var driver = Driver(.init(window: 5))
        driver.source = [Self.row(1)]
        driver.send(.connected)
        driver.round()
        driver.send(.stop(drainFor: 2))
        #expect(!driver.machine.isFinished(now: driver.now + 1.9))
        #expect(driver.machine.isFinished(now: driver.now + 2))
        driver.send(.disconnected)
        #expect(driver.machine.isFinished(now: driver.now))
    }

    @Test("a PUBACK missing for ackTimeout on a live connection asks for one reconnect; the resends get a new ackTimeout")
    func stalledConnection() {
        var driver = Driver(.init(window: 5, ackTimeout: 10))
        driver.source = [Self.row(1), Self.row(2)]
        driver.send(.connected)
        driver.round()
        #expect(driver.machine.checkStall(now: driver.now + 9).isEmpty)
        driver.send(.published(messageID: driver.id(of: .row(2))))
        let stalled = driver.machine.checkStall(now: driver.now + 10)
        #expect(stalled == [.reconnect(reason: "no PUBACK in 10 s for the oldest of 1 messages in flight")])
        // Asked once: not again until the connection is back.
        #expect(driver.machine.checkStall(now: driver.now + 20).isEmpty)
        driver.now += 20
        driver.send(.disconnected)
        driver.send(.connected)
        #expect(driver.machine.checkStall(now: driver.now + 9.5).isEmpty, "the resend has 10 s again")
        #expect(driver.machine.checkStall(now: driver.now + 10.5).count == 1, "looked at once a second")
    }

    @Test("without ackTimeout, or with nothing in flight, nothing is ever called stalled")
    func noStallCheck() {
        var off = Driver(.init(window: 5))
        off.source = [Self.row(1)]
        off.send(.connected)
        off.round()
        #expect(off.machine.checkStall(now: off.now + 10_000).isEmpty)
        var idle = Driver(.init(window: 5, ackTimeout: 1))
        idle.send(.connected)
        #expect(idle.machine.checkStall(now: idle.now + 10_000).isEmpty)
        #expect(idle.machine.wake(now: idle.now).deadline == nil)
    }

    @Test("events for message IDs it does not know are ignored")
    func unknownIDs() {
        var machine = Machine(.init(window: 5))
        _ = machine.handle(.connected, now: 0)
        #expect(machine.handle(.published(messageID: 42), now: 0).isEmpty)
        #expect(machine.handle(.refused(messageID: 42, code: 0x97, reason: "x", transient: true), now: 0).isEmpty)
        #expect(machine.unsettled == 0)
    }
}
