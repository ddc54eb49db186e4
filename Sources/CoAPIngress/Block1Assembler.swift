import Foundation

/// A Block1 option's value (RFC 7959 §2.2): block number, more flag, size exponent.
public struct Block1Option: Sendable, Equatable {
    public var number: UInt32
    public var more: Bool
    /// Block size is `16 << sizeExponent`; 7 is BERT, which UDP does not use.
    public var sizeExponent: UInt8

    public init(number: UInt32, more: Bool, sizeExponent: UInt8) {
        self.number = number
        self.more = more
        self.sizeExponent = sizeExponent
    }

    public init(encoded value: UInt32) {
        self.init(number: value >> 4, more: value & 0x08 != 0, sizeExponent: UInt8(value & 0x07))
    }

    public var encoded: UInt32 { number << 4 | (more ? 0x08 : 0) | UInt32(sizeExponent) }
    public var blockSize: Int { 16 << Int(sizeExponent) }
    public var offset: Int { Int(number) << (Int(sizeExponent) + 4) }
}

/// Reassembles Block1 (block-wise request body) transfers ourselves, with
/// hard caps. libcoap 4.3.1 can do this itself, but it sizes its buffer from
/// the client's Size1 option or block offset without a limit, so a single
/// datagram could make it allocate gigabytes.
public struct Block1Assembler {
    /// What to do with one received block.
    public enum Step: Equatable {
        /// Answer 2.31 Continue, echoing this Block1 option.
        case needMore(echo: Block1Option)
        /// The body is whole; the final answer echoes this Block1 option.
        case complete(body: [UInt8], echo: Block1Option)
        /// A block arrived out of order or for an unknown transfer (4.08).
        case incomplete(reason: String)
        /// The body would exceed the limit (4.13 with Size1).
        case tooLarge(limit: Int)
        /// The block itself is malformed (4.00).
        case malformed(reason: String)
    }

    /// Identifies one transfer: the client endpoint (plain or DTLS) and the request target.
    public struct Key: Hashable, Sendable {
        public var peer: String
        public var method: UInt8
        public var path: [[UInt8]]
        /// Over DTLS: blocks of a device's secure transfer never mix with
        /// plain ones from the same address.
        public var secure: Bool

        public init(peer: String, method: UInt8, path: [[UInt8]], secure: Bool = false) {
            self.peer = peer
            self.method = method
            self.path = path
            self.secure = secure
        }
    }

    struct Transfer {
        var body: [UInt8]
        var lastActivity: TimeInterval
    }

    public let maxBody: Int
    public let maxTransfers: Int
    public let idleTimeout: TimeInterval
    private var transfers: [Key: Transfer] = [:]

    public init(maxBody: Int, maxTransfers: Int = 64, idleTimeout: TimeInterval = 60) {
        self.maxBody = maxBody
        self.maxTransfers = maxTransfers
        self.idleTimeout = idleTimeout
    }

    public var activeTransfers: Int { transfers.count }

    public mutating func receive(
        _ block: Block1Option, size1: Int?, payload: [UInt8], key: Key, now: TimeInterval
    ) -> Step {
        guard block.sizeExponent < 7 else {
            transfers.removeValue(forKey: key)
            return .malformed(reason: "BERT block size is not supported over UDP")
        }
        if let size1, size1 > maxBody {
            transfers.removeValue(forKey: key)
            return .tooLarge(limit: maxBody)
        }
        if block.more && payload.count != block.blockSize {
            transfers.removeValue(forKey: key)
            return .malformed(reason: "block \(block.number) carries \(payload.count) bytes, expected \(block.blockSize)")
        }
        var transfer: Transfer
        if block.number == 0 {
            expire(now: now)
            if transfers[key] == nil && transfers.count >= maxTransfers, let oldest = transfers.min(by: { $0.value.lastActivity < $1.value.lastActivity }) {
                transfers.removeValue(forKey: oldest.key)
            }
            transfer = Transfer(body: [], lastActivity: now)
        } else {
            guard let existing = transfers[key], now - existing.lastActivity <= idleTimeout else {
                transfers.removeValue(forKey: key)
                return .incomplete(reason: "block \(block.number) does not continue a transfer; start again at block 0")
            }
            guard existing.body.count == block.offset else {
                transfers.removeValue(forKey: key)
                return .incomplete(reason: "block \(block.number) is out of order; start again at block 0")
            }
            transfer = existing
        }
        guard transfer.body.count + payload.count <= maxBody else {
            transfers.removeValue(forKey: key)
            return .tooLarge(limit: maxBody)
        }
        transfer.body.append(contentsOf: payload)
        transfer.lastActivity = now
        if block.more {
            transfers[key] = transfer
            return .needMore(echo: block)
        }
        transfers.removeValue(forKey: key)
        return .complete(body: transfer.body, echo: block)
    }

    /// Drops transfers idle for longer than `idleTimeout`.
    public mutating func expire(now: TimeInterval) {
        transfers = transfers.filter { now - $0.value.lastActivity <= idleTimeout }
    }
}
