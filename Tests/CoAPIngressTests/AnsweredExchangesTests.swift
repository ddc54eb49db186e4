import Testing
@testable import CoAPIngress

@Suite("Answered exchanges (duplicate detection)")
struct AnsweredExchangesTests {
    static func key(_ messageID: Int32, port: UInt16 = 5000, secure: Bool = false) -> AnsweredExchanges.Key {
        .init(peer: PeerKey(ipv4: 0x7F00_0001, port: port), secure: secure, messageID: messageID, token: CoAPToken(bytes: [1, 2]))
    }

    @Test func anAnswerIsRepeatedForTheSameExchangeOnly() {
        var answered = AnsweredExchanges()
        answered.record(Self.key(1), .changed, now: 0)
        #expect(answered.reply(for: Self.key(1), now: 1) == .changed)
        #expect(answered.reply(for: Self.key(2), now: 1) == nil)
        #expect(answered.reply(for: Self.key(1, port: 5001), now: 1) == nil)
        // The same address over DTLS is another exchange.
        #expect(answered.reply(for: Self.key(1, secure: true), now: 1) == nil)
    }

    @Test func answersExpireAfterTheExchangeLifetime() {
        var answered = AnsweredExchanges()
        answered.record(Self.key(1), .changed, now: 0)
        answered.record(Self.key(2), .changed, now: 100)
        #expect(answered.reply(for: Self.key(1), now: AnsweredExchanges.lifetime + 1) == nil)
        #expect(answered.reply(for: Self.key(2), now: AnsweredExchanges.lifetime + 1) == .changed)
    }

    @Test func theOldestGoFirstPastTheBound() {
        var answered = AnsweredExchanges()
        for id in 0...Int32(AnsweredExchanges.maxEntries) {
            answered.record(Self.key(id), .changed, now: 0)
        }
        #expect(answered.reply(for: Self.key(0), now: 0) == nil)
        #expect(answered.reply(for: Self.key(1), now: 0) == .changed)
        #expect(answered.reply(for: Self.key(Int32(AnsweredExchanges.maxEntries)), now: 0) == .changed)
    }
}
