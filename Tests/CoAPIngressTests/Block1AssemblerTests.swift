import Testing
@testable import CoAPIngress

@Suite("Block1 reassembly")
struct Block1AssemblerTests {
    let key = Block1Assembler.Key(peer: "127.0.0.1:1", method: 2, path: [Array("a".utf8)])

    func block(_ number: UInt32, more: Bool, szx: UInt8 = 0) -> Block1Option {
        Block1Option(number: number, more: more, sizeExponent: szx)
    }

    @Test func optionEncodingRoundTrips() {
        let option = Block1Option(number: 5, more: true, sizeExponent: 2)
        #expect(Block1Option(encoded: option.encoded) == option)
        #expect(option.blockSize == 64)
        #expect(option.offset == 320)
    }

    @Test func blocksInOrderMakeTheBody() {
        var assembler = Block1Assembler(maxBody: 100)
        let first = [UInt8](repeating: 1, count: 16), second = [UInt8](repeating: 2, count: 16)
        #expect(assembler.receive(block(0, more: true), size1: nil, payload: first, key: key, now: 0) == .needMore(echo: block(0, more: true)))
        #expect(assembler.receive(block(1, more: true), size1: nil, payload: second, key: key, now: 1) == .needMore(echo: block(1, more: true)))
        #expect(assembler.receive(block(2, more: false), size1: nil, payload: [3], key: key, now: 2) == .complete(body: first + second + [3], echo: block(2, more: false)))
        #expect(assembler.activeTransfers == 0)
    }

    @Test func aGapIsIncomplete() {
        var assembler = Block1Assembler(maxBody: 100)
        _ = assembler.receive(block(0, more: true), size1: nil, payload: .init(repeating: 0, count: 16), key: key, now: 0)
        guard case .incomplete = assembler.receive(block(2, more: false), size1: nil, payload: [1], key: key, now: 0) else {
            Issue.record("expected 4.08"); return
        }
    }

    @Test func aContinuationWithoutAStartIsIncomplete() {
        var assembler = Block1Assembler(maxBody: 100)
        guard case .incomplete = assembler.receive(block(1, more: false), size1: nil, payload: [1], key: key, now: 0) else {
            Issue.record("expected 4.08"); return
        }
    }

    @Test func size1OverTheLimitIsRefusedBeforeAnythingIsStored() {
        var assembler = Block1Assembler(maxBody: 100)
        #expect(assembler.receive(block(0, more: true), size1: 1 << 30, payload: .init(repeating: 0, count: 16), key: key, now: 0) == .tooLarge(limit: 100))
        #expect(assembler.activeTransfers == 0)
    }

    @Test func growingPastTheLimitIsRefused() {
        var assembler = Block1Assembler(maxBody: 40)
        let chunk = [UInt8](repeating: 0, count: 16)
        _ = assembler.receive(block(0, more: true), size1: nil, payload: chunk, key: key, now: 0)
        _ = assembler.receive(block(1, more: true), size1: nil, payload: chunk, key: key, now: 0)
        #expect(assembler.receive(block(2, more: true), size1: nil, payload: chunk, key: key, now: 0) == .tooLarge(limit: 40))
        #expect(assembler.activeTransfers == 0)
    }

    @Test func aShortBlockThatSaysMoreIsMalformed() {
        var assembler = Block1Assembler(maxBody: 100)
        guard case .malformed = assembler.receive(block(0, more: true), size1: nil, payload: [1, 2], key: key, now: 0) else {
            Issue.record("expected 4.00"); return
        }
    }

    @Test func bertIsRefused() {
        var assembler = Block1Assembler(maxBody: 100)
        guard case .malformed = assembler.receive(block(0, more: false, szx: 7), size1: nil, payload: [1], key: key, now: 0) else {
            Issue.record("expected 4.00"); return
        }
    }

    @Test func idleTransfersExpire() {
        var assembler = Block1Assembler(maxBody: 100, idleTimeout: 10)
        _ = assembler.receive(block(0, more: true), size1: nil, payload: .init(repeating: 0, count: 16), key: key, now: 0)
        guard case .incomplete = assembler.receive(block(1, more: false), size1: nil, payload: [1], key: key, now: 11) else {
            Issue.record("expected the transfer to have expired"); return
        }
    }

    @Test func theNumberOfTransfersIsBounded() {
        var assembler = Block1Assembler(maxBody: 100, maxTransfers: 2)
        for peer in 0..<5 {
            let other = Block1Assembler.Key(peer: "p\(peer)", method: 2, path: [])
            _ = assembler.receive(block(0, more: true), size1: nil, payload: .init(repeating: 0, count: 16), key: other, now: Double(peer))
        }
        #expect(assembler.activeTransfers == 2)
    }
}
