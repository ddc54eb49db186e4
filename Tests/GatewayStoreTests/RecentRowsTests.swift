import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Recent rows (what the forwarder publishes from memory)")
struct RecentRowsTests {
    static func row(_ id: Int64, bytes: Int = 1) -> StoredMessage {
        StoredMessage(id: id, message: message("t", String(repeating: "x", count: bytes)))
    }

    @Test func rowsAfterTheCursorComeInOrderAndOlderOnesAreForgotten() throws {
        var recent = RecentRows(coveredAfter: 10)
        for id in 11...15 { recent.append(Self.row(Int64(id))) }
        #expect(recent.take(after: 10, limit: 2)?.map(\.id) == [11, 12])
        #expect(recent.take(after: 12, limit: 10)?.map(\.id) == [13, 14, 15])
        #expect(recent.count == 3)
        #expect(recent.take(after: 15, limit: 10)?.isEmpty == true)
        #expect(recent.count == 0)
    }

    @Test func aCursorBeforeTheCoveredRangeMustReadFromDisk() {
        var recent = RecentRows(coveredAfter: 100)
        recent.append(Self.row(101))
        #expect(recent.take(after: 99, limit: 10) == nil)
    }

    @Test func pastTheBoundTheOldestGoAndCoverageMovesUp() throws {
        var recent = RecentRows(coveredAfter: 0)
        let total = RecentRows.maxMessages + 10
        for id in 1...total { recent.append(Self.row(Int64(id))) }
        #expect(recent.count == RecentRows.maxMessages)
        #expect(recent.coveredAfter == 10)
        #expect(recent.take(after: 5, limit: 1) == nil)
        #expect(recent.take(after: 10, limit: 1)?.map(\.id) == [11])

        var large = RecentRows(coveredAfter: 0)
        let size = RecentRows.maxBytes / 4
        for id in 1...6 { large.append(Self.row(Int64(id), bytes: size)) }
        #expect(large.count < 6)
        let first = try #require(large.take(after: large.coveredAfter, limit: 10)?.first)
        #expect(first.id == large.coveredAfter + 1)
    }
}
