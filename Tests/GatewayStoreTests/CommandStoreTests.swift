import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Command store")
struct CommandStoreTests {
    func withStore(_ body: (CommandStore, String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iotgw-commands-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("commands.sqlite").path
        try body(try CommandStore(path: path), path)
    }

    let mailbox = Mailbox(filter: "cmd/d1/#", keep: 3, expiry: 60, format: .raw)

    func command(_ text: String, at time: Double = 1000) -> DeviceCommand {
        DeviceCommand(topic: "cmd/d1/x", payload: Array(text.utf8), receivedAt: time)
    }

    @Test func keepsTheNewestUpToItsBoundAndHandsThemOutOldestFirst() throws {
        try withStore { store, _ in
            for index in 1...5 { try store.keep(command("c\(index)"), in: mailbox) }
            #expect(try store.count(in: mailbox.filter) == 3)
            var taken: [String] = []
            while let next = try store.take(from: mailbox.filter, now: 1001) { taken.append(String(decoding: next.payload, as: UTF8.self)) }
            #expect(taken == ["c3", "c4", "c5"])
            // Another device's mailbox is its own.
            try store.keep(command("other"), in: Mailbox(filter: "cmd/d2/#", keep: 3, expiry: 60, format: .raw))
            #expect(try store.take(from: mailbox.filter, now: 1001) == nil)
        }
    }

    @Test func expiredCommandsAreNotHandedOutAndAPutBackOneComesFirst() throws {
        try withStore { store, _ in
            try store.keep(command("old", at: 100), in: mailbox)
            try store.keep(command("new", at: 1000), in: mailbox)
            let first = try #require(try store.take(from: mailbox.filter, now: 1010))
            #expect(first.payload == Array("new".utf8))
            try store.keep(command("later", at: 1005), in: mailbox)
            try store.putBack(first, in: mailbox)
            #expect(try store.take(from: mailbox.filter, now: 1010)?.payload == Array("new".utf8))
            #expect(try store.purgeExpired(now: 2000) == 1)
        }
    }

    @Test func putBackCommandsTakeTheirOldPlaceAndAMailboxThatKeepsNoneKeepsNone() throws {
        try withStore { store, _ in
            for (index, time) in [10.0, 20, 30].enumerated() { try store.keep(command("c\(index + 1)", at: time), in: mailbox) }
            let first = try #require(try store.take(from: mailbox.filter, now: 40))
            let second = try #require(try store.take(from: mailbox.filter, now: 40))
            // Notifications failing in the order they were sent come back in that order.
            try store.putBack(first, in: mailbox)
            try store.putBack(second, in: mailbox)
            var order: [String] = []
            while let next = try store.take(from: mailbox.filter, now: 40) { order.append(String(decoding: next.payload, as: UTF8.self)) }
            #expect(order == ["c1", "c2", "c3"])
            let none = Mailbox(filter: "cmd/d9/#", keep: 0, expiry: 60, format: .raw)
            try store.putBack(first, in: none)
            #expect(try store.count(in: none.filter) == 0)
        }
    }

    @Test func followedFiltersAndKeptCommandsSurviveReopening() throws {
        try withStore { store, path in
            try store.follow(.init(filter: mailbox.filter, connection: 1, mailbox: mailbox))
            try store.follow(.init(filter: "$aws/things/t/shadow/get/+", connection: 0))
            try store.keep(command("kept"), in: mailbox)
            let reopened = try CommandStore(path: path)
            #expect(Set(try reopened.followedFilters().map(\.filter)) == [mailbox.filter, "$aws/things/t/shadow/get/+"])
            #expect(try reopened.followedFilters().first { $0.filter == mailbox.filter } == .init(filter: mailbox.filter, connection: 1, mailbox: mailbox))
            #expect(try reopened.followedFilters().first { $0.connection == 0 }?.mailbox == nil)
            try reopened.unfollow("$aws/things/t/shadow/get/+")
            #expect(try reopened.count(in: mailbox.filter) == 1)
            try reopened.unfollow(mailbox.filter)
            #expect(try reopened.followedFilters().isEmpty)
            #expect(try reopened.count(in: mailbox.filter) == 0)
        }
    }
}
