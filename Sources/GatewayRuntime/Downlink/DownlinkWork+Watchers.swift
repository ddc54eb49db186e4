import Foundation
import GatewayCore
import GatewayStore

/// Devices following a shadow's deltas or their commands, on the downlink
/// thread. A followed filter is subscribed on demand and never dropped while
/// someone follows it; a command filter stays subscribed after its device
/// left (until the table needs its slot), so what arrives is kept for it.
extension DownlinkWork {
    mutating func add(_ watcher: Watcher) {
        let index = watcher.connection
        let filter = watcher.filter
        switch tables[index].use(filter) {
        case .active, .subscribing:
            break
        case .subscribe(let evicting):
            evict(evicting, on: index)
            if case .delta = watcher.source { record(filter, on: index) }
            switch transports[index].subscribe(filter, qos: .atLeastOnce) {
            case .sent(let messageID):
                tables[index].sent(filter, messageID: messageID)
            case .notConnected:
                break  // subscribed at the next connect
            case .rejected(let reason):
                tables[index].remove(filter)
                forget(filter)
                watcher.end(.badGateway(reason: "cannot subscribe to \(filter): \(reason)"))
                return
            }
        case .full:
            watcher.end(.unavailable(retryAfterSeconds: 5, reason: "every subscription of the gateway's connection is in use; retry later"))
            return
        }
        if case .commands(let mailbox) = watcher.source {
            startFollowing(mailbox, on: index)
            guard deliverKept(mailbox, to: watcher) else {
                tables[index].release(filter)
                return
            }
        }
        watchers[watcher.id] = watcher
        following[filter, default: []].insert(watcher.id)
    }

    /// Hands kept commands to a watcher that just came: a poll takes the
    /// oldest (false: it is answered and done); an observer gets the oldest
    /// as its registration's answer and the rest as notifications.
    private mutating func deliverKept(_ mailbox: Mailbox, to watcher: Watcher) -> Bool {
        switch watcher.mode {
        case .poll(let deadline, let completion):
            if let command = takeKept(mailbox) {
                completion(.success(.reply(Self.reply(command, mailbox: mailbox))))
                return false
            }
            if deadline.hasPassed {
                completion(.success(.reply(DeviceReply(kind: .unchanged, body: []))))
                return false
            }
            return true
        case .observe(let events):
            let first = takeKept(mailbox)
            events(.initial(.success(.reply(first.map { Self.reply($0, mailbox: mailbox) } ?? DeviceReply(kind: .content, body: [], contentType: nil)))))
            while let next = takeKept(mailbox) { events(.notification(Self.reply(next, mailbox: mailbox))) }
            return true
        }
    }

    /// The watcher is gone; a command it did not acknowledge is kept again.
    mutating func stopWatching(_ id: ObservationID, undelivered: DeviceReply?) {
        remove(id)
        if let command = undelivered?.command, let filter = undelivered?.mailbox, let mailbox = mailboxes[filter] {
            do {
                try store?.putBack(command, in: mailbox)
            } catch {
                logger.error("command not kept", metadata: ["mqtt.topic": "\(command.topic)", "error": "\(error)"])
            }
        }
    }

    /// Forgets a watcher, nothing said to it.
    @discardableResult
    mutating func remove(_ id: ObservationID) -> Watcher? {
        guard let watcher = watchers.removeValue(forKey: id) else { return nil }
        let filter = watcher.filter
        following[filter]?.remove(id)
        if following[filter]?.isEmpty == true {
            following.removeValue(forKey: filter)
            if case .delta(let address, _) = watcher.source { lastDeltaVersion.removeValue(forKey: address) }
        }
        tables[watcher.connection].release(filter)
        return watcher
    }

    mutating func deliverDelta(topic: String, payload: [UInt8]) {
        guard let address = ShadowAddress(deltaTopic: topic), let ids = following[address.deltas],
              let answer = ShadowMessages.decode(payload) else { return }
        // `…/update/+` (for update answers) matches the delta topic too; a
        // broker may deliver once per matching subscription.
        if let version = answer.version {
            if let last = lastDeltaVersion[address], version <= last { return }
            lastDeltaVersion[address] = version
        }
        for id in ids {
            guard let watcher = watchers[id], case .delta(_, let mode) = watcher.source,
                  let reply = answer.deltaReply(answer: mode) else { continue }
            switch watcher.mode {
            case .poll(_, let completion):
                remove(id)
                completion(.success(.reply(reply)))
            case .observe(let events):
                events(.notification(reply))
            }
        }
    }

    /// A command: to every observer of its mailbox, else to the longest
    /// waiting poll, else kept for the device's next visit.
    mutating func deliverCommand(topic: String, payload: [UInt8]) {
        let command = DeviceCommand(topic: topic, payload: payload, receivedAt: Date().timeIntervalSince1970)
        for filter in commandFilters where filter.matches(topic) {
            guard let mailbox = mailboxes[filter.text] else { continue }
            let reply = Self.reply(command, mailbox: mailbox)
            let present = (following[mailbox.filter] ?? []).compactMap { watchers[$0] }
            let observers = present.filter { if case .observe = $0.mode { return true } else { return false } }
            if !observers.isEmpty {
                for observer in observers {
                    if case .observe(let events) = observer.mode { events(.notification(reply)) }
                }
                logger.debug("command delivered", metadata: ["mqtt.topic": "\(topic)", "devices.listening": "\(observers.count)"])
            } else if let poll = present.max(by: { $0.id.value < $1.id.value }), case .poll(_, let completion) = poll.mode {
                // The newest poll: an older one may hang on a connection the
                // device already closed (a suspended one is not watched).
                remove(poll.id)
                completion(.success(.reply(reply)))
                logger.debug("command delivered", metadata: ["mqtt.topic": "\(topic)", "devices.listening": "1"])
            } else if mailbox.keep == 0 || store == nil {
                logger.info("command not kept", metadata: [
                    "mqtt.topic": "\(topic)", "commands.filter": "\(mailbox.filter)", "reason": "nobody listens and the mapping keeps none",
                ])
            } else {
                do {
                    let dropped = try store?.keep(command, in: mailbox) ?? 0
                    logger.info("command kept", metadata: [
                        "mqtt.topic": "\(topic)", "commands.filter": "\(mailbox.filter)", "commands.dropped": "\(dropped)",
                    ])
                } catch {
                    logger.error("command not kept", metadata: ["mqtt.topic": "\(topic)", "error": "\(error)"])
                }
            }
        }
    }

    /// What the device is sent for a command.
    static func reply(_ command: DeviceCommand, mailbox: Mailbox) -> DeviceReply {
        var reply: DeviceReply
        switch mailbox.format {
        case .raw:
            reply = DeviceReply(kind: .content, body: command.payload, contentType: nil)
        case .envelope:
            var object: [String: Any] = ["topic": command.topic, "received_at": command.receivedAt]
            if let text = String(validating: command.payload, as: UTF8.self) {
                object["payload"] = text
            } else {
                object["payload_base64"] = Data(command.payload).base64EncodedString()
            }
            let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])).map(Array.init) ?? []
            reply = DeviceReply(kind: .content, body: body)
        }
        reply.command = command
        reply.mailbox = mailbox.filter
        return reply
    }

    private func takeKept(_ mailbox: Mailbox) -> DeviceCommand? {
        do {
            return try store?.take(from: mailbox.filter, now: Date().timeIntervalSince1970)
        } catch {
            logger.error("kept commands unreadable", metadata: ["commands.filter": "\(mailbox.filter)", "error": "\(error)"])
            return nil
        }
    }

    /// A command filter joins the followed set (and the store, for a restart).
    private mutating func startFollowing(_ mailbox: Mailbox, on index: Int) {
        guard mailboxes[mailbox.filter] != mailbox else { return }
        mailboxes[mailbox.filter] = mailbox
        record(mailbox.filter, on: index, mailbox: mailbox)
    }

    /// Notes a subscription in the store: the broker keeps a persistent
    /// session's subscriptions across a restart, so the next process must
    /// know them (to count them under the quota, and to drop them).
    mutating func record(_ filter: String, on index: Int, mailbox: Mailbox? = nil) {
        do {
            try store?.follow(.init(filter: filter, connection: index, mailbox: mailbox))
        } catch {
            logger.error("subscription not recorded", metadata: ["mqtt.filter": "\(filter)", "error": "\(error)"])
        }
    }

    /// A filter is no longer subscribed: out of the store, with a command
    /// filter's kept commands (nothing would deliver them).
    mutating func forget(_ filter: String) {
        mailboxes.removeValue(forKey: filter)
        do {
            try store?.unfollow(filter)
        } catch {
            logger.error("subscription not forgotten", metadata: ["mqtt.filter": "\(filter)", "error": "\(error)"])
        }
    }

    /// Filters dropped from a full table: unsubscribed and forgotten.
    mutating func evict(_ filters: [String], on index: Int) {
        for filter in filters {
            unsubscribe(filter, on: index)
            if mailboxes[filter] != nil {
                logger.info("command filter dropped", metadata: ["commands.filter": "\(filter)", "reason": "its subscription slot was needed"])
            }
            forget(filter)
        }
    }

    /// After a restart: the filters subscribed before, idle, to be
    /// subscribed again at the next connect (or dropped when they no longer fit).
    mutating func restoreFollowed() {
        guard let store else { return }
        do {
            for followed in try store.followedFilters() {
                let index = min(max(0, followed.connection), tables.count - 1)
                // Another connection count moves filters: the old session
                // still holds it where it was, the new requests go where it hashes now.
                if followed.connection == index, Self.connection(for: followed.filter, of: tables.count) == index,
                   tables[index].adopt(followed.filter) {
                    if let mailbox = followed.mailbox { mailboxes[followed.filter] = mailbox }
                } else {
                    // Fewer connections or a smaller cap than before: the
                    // old session may still hold it; drop it at the next connect.
                    try store.unfollow(followed.filter)
                    pendingUnsubscribes.append((index, followed.filter))
                }
            }
        } catch {
            logger.error("followed subscriptions unreadable", metadata: ["error": "\(error)"])
        }
    }

    /// Where a filter's subscription belongs: a shadow's by its thing name
    /// (as `Downlink.connection(for:)`), a command filter's by itself.
    static func connection(for filter: String, of count: Int) -> Int {
        var key = filter
        if filter.hasPrefix("$aws/things/") {
            let levels = filter.split(separator: "/", omittingEmptySubsequences: false)
            if levels.count > 2 { key = String(levels[2]) }
        }
        return ShardHash.shard(ShardHash.of(key), of: count)
    }

    /// The subscription was refused: its watchers hear why.
    mutating func endWatchers(of filter: String, _ rejection: IngressRejection) {
        let ended = watchers.values.filter { $0.filter == filter }
        for watcher in ended {
            remove(watcher.id)
            watcher.end(rejection)
        }
        forget(filter)
    }

    /// Expired kept commands go, once a minute.
    mutating func purgeKept(now: Deadline) {
        guard now >= nextPurge else { return }
        nextPurge = now + 60
        _ = try? store?.purgeExpired(now: Date().timeIntervalSince1970)
    }
}
