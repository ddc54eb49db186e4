import Testing
@testable import GatewayStore

@Suite("StorageBudget")
struct StorageBudgetTests {
    @Test("a 6 MiB disk: a 96-page WAL, a 768 KiB reserve, and max_bytes lowered to what is left over twice")
    func smallDisk() {
        let budget = StorageBudget(freeBytes: 6 << 20, usedBytes: 0, configuredMaxBytes: 512 << 20)
        #expect(budget.walPages == 96)
        #expect(budget.reserveBytes == 768 << 10)
        #expect(budget.maxBytes == ((6 << 20) - 4 * (384 << 10)) / 2)
        #expect(budget.lowered)
    }

    @Test("a large disk keeps SQLite's 1,000-page WAL, an 8 MB reserve and the configured max_bytes")
    func largeDisk() {
        let budget = StorageBudget(freeBytes: 32 << 30, usedBytes: 0, configuredMaxBytes: 512 << 20)
        #expect(budget.walPages == 1000)
        #expect(budget.reserveBytes == 2 * 1000 * 4096)
        #expect(budget.maxBytes == 512 << 20)
        #expect(!budget.lowered)
    }

    @Test("the outbox's own files count as room: a restart with a backlog does not lower max_bytes below it")
    func usedBytesCount() {
        let empty = StorageBudget(freeBytes: 100 << 20, usedBytes: 0, configuredMaxBytes: 512 << 20)
        let filled = StorageBudget(freeBytes: 60 << 20, usedBytes: 40 << 20, configuredMaxBytes: 512 << 20)
        #expect(empty == filled)
    }

    @Test("no room at all still leaves a small queue rather than none")
    func noRoom() {
        let budget = StorageBudget(freeBytes: 0, usedBytes: 0, configuredMaxBytes: 512 << 20)
        #expect(budget.maxBytes == 64 * 1024)
        #expect(budget.walPages == 64)
    }
}
