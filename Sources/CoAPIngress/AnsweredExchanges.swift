import DequeModule

/// Answers recently sent to CON requests that reached the outbox, so a
/// retransmission (the device did not get our ACK) is answered again instead
/// of stored twice: RFC 7252 4.5's duplicate detection, which libcoap 4.3.1
/// leaves to the application. Bounded in count and in age.
struct AnsweredExchanges {
    struct Key: Hashable {
        var peer: PeerKey
        /// DTLS: answers to a device's secure exchanges are kept apart from
        /// plain ones from the same address.
        var secure: Bool
        var messageID: Int32
        var token: CoAPToken
    }

    /// EXCHANGE_LIFETIME (RFC 7252 4.8.2): after that a device must not
    /// retransmit, and may reuse the message ID.
    static let lifetime = 247.0
    /// About 1.5 MiB at most; up to about 66 requests per second it covers
    /// the whole lifetime, under heavy load the last fraction of a second.
    static let maxEntries = 16_384

    private var replies: [Key: CoAPReply] = [:]
    private var order = Deque<(key: Key, at: Double)>()

    var isEmpty: Bool { replies.isEmpty }

    mutating func record(_ key: Key, _ reply: CoAPReply, now: Double) {
        expire(now: now)
        if replies.updateValue(reply, forKey: key) == nil {
            order.append((key, now))
        }
        while replies.count > Self.maxEntries { dropOldest() }
    }

    /// The answer sent to this exchange, if it is recent enough to repeat.
    mutating func reply(for key: Key, now: Double) -> CoAPReply? {
        expire(now: now)
        return replies[key]
    }

    private mutating func expire(now: Double) {
        while let oldest = order.first, now - oldest.at > Self.lifetime { dropOldest() }
    }

    private mutating func dropOldest() {
        guard let oldest = order.popFirst() else { return }
        replies.removeValue(forKey: oldest.key)
    }
}

extension AnsweredExchanges.Key {
    init(peer: PeerKey, secure: Bool, _ exchange: CoAPEngine.Exchange) {
        self.init(peer: peer, secure: secure, messageID: exchange.messageID, token: exchange.token)
    }

    init(_ entry: CoAPEngine.Pending) {
        self.init(peer: entry.address, secure: entry.secure, entry.exchange)
    }
}
