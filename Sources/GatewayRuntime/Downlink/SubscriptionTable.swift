/// The topic filters one upstream connection subscribes to on demand, held
/// under a cap below the broker's quota (AWS IoT Core: 50 per connection).
/// Filters nobody uses stay subscribed, so the next request for the same
/// thing needs no SUBSCRIBE; when the cap is reached the least recently
/// used idle one is dropped. Pure: the caller sends the packets.
struct SubscriptionTable {
    enum State: Equatable {
        /// SUBSCRIBE sent with this message ID; nil: to be sent at the next connect.
        case subscribing(messageID: Int32?)
        case active
    }

    struct Entry {
        var state: State
        var lastUsed: UInt64
        /// Requests (later: observers) waiting on it; an entry in use is never dropped.
        var users: Int
    }

    /// What `use` found.
    enum Use: Equatable {
        /// Subscribed: go ahead.
        case active
        /// The SUBACK is awaited: wait for it.
        case subscribing
        /// Send SUBSCRIBE for it (and UNSUBSCRIBE for `evicting` first).
        case subscribe(evicting: [String])
        /// Every slot is in use: nothing can be dropped for it.
        case full
    }

    let capacity: Int
    private(set) var entries: [String: Entry] = [:]
    private var clock: UInt64 = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Counts a user of `filter`, adding the filter if needed.
    mutating func use(_ filter: String) -> Use {
        clock += 1
        if var entry = entries[filter] {
            entry.users += 1
            entry.lastUsed = clock
            entries[filter] = entry
            return entry.state == .active ? .active : .subscribing
        }
        var evicting: [String] = []
        while entries.count >= capacity {
            guard let idle = entries.filter({ $0.value.users == 0 && $0.value.state == .active })
                .min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key else {
                // Undo the evictions: the caller will not send them.
                for filter in evicting { entries[filter] = Entry(state: .active, lastUsed: 0, users: 0) }
                return .full
            }
            entries.removeValue(forKey: idle)
            evicting.append(idle)
        }
        entries[filter] = Entry(state: .subscribing(messageID: nil), lastUsed: clock, users: 1)
        return .subscribe(evicting: evicting)
    }

    /// Takes in a filter followed before a restart, idle and to be
    /// subscribed at the next connect; false when the table is full.
    mutating func adopt(_ filter: String) -> Bool {
        guard entries[filter] == nil else { return true }
        guard entries.count < capacity else { return false }
        clock += 1
        entries[filter] = Entry(state: .subscribing(messageID: nil), lastUsed: clock, users: 0)
        return true
    }

    mutating func release(_ filter: String) {
        guard var entry = entries[filter] else { return }
        entry.users = max(0, entry.users - 1)
        entries[filter] = entry
    }

    mutating func sent(_ filter: String, messageID: Int32) {
        entries[filter]?.state = .subscribing(messageID: messageID)
    }

    /// The filter a SUBACK answers, made active (`granted`) or removed.
    mutating func acknowledged(messageID: Int32, granted: Bool) -> String? {
        guard let filter = entries.first(where: { $0.value.state == .subscribing(messageID: messageID) })?.key else { return nil }
        if granted {
            entries[filter]?.state = .active
        } else {
            entries.removeValue(forKey: filter)
        }
        return filter
    }

    /// Forgets a filter whose SUBSCRIBE could not be sent.
    mutating func remove(_ filter: String) {
        entries.removeValue(forKey: filter)
    }

    /// A new connection: every filter is subscribed again (the broker may
    /// have kept the session, but cannot be relied on to have).
    mutating func reconnected() -> [String] {
        for key in entries.keys { entries[key]?.state = .subscribing(messageID: nil) }
        return Array(entries.keys)
    }
}
