/// What a `shadow:` mapping binds its resource to: one thing's classic or
/// named Device Shadow, reached through AWS IoT Core's reserved MQTT topics.
public struct ShadowBinding: Sendable, Equatable {
    /// What a GET answers with.
    public enum Answer: String, Sendable, CaseIterable {
        /// The whole document AWS returns: state, metadata, version, timestamp.
        case document
        /// Only its `state` object (desired, reported, delta).
        case state
        /// Only `state.desired`: what the device should do, smallest to send.
        case desired
    }

    /// What an update does while the upstream connection is down.
    public enum Offline: String, Sendable, CaseIterable {
        /// Answer 5.03 / 503: the device retries, the shadow is never stale.
        case refuse
        /// Queue it like a reading (QoS 1, through the outbox) and answer
        /// 2.04 / 202 at once; AWS applies it after the reconnect.
        case queue
    }

    /// The thing name as written, e.g. `{device}`.
    public var thing: TopicTemplate
    /// The named shadow; nil for the classic one.
    public var name: TopicTemplate?
    public var answer: Answer
    /// Seconds to wait for `…/accepted` or `…/rejected`.
    public var timeout: Double
    public var offline: Offline

    public init(thing: TopicTemplate, name: TopicTemplate? = nil, answer: Answer = .document, timeout: Double = 5, offline: Offline = .refuse) {
        self.thing = thing
        self.name = name
        self.answer = answer
        self.timeout = timeout
        self.offline = offline
    }

    /// The update topic as a template: a shadow mapping's `topic`, which is
    /// also where an update queued through an outage is published.
    public var updateTopicText: String {
        "$aws/things/\(thing.text)/shadow" + (name.map { "/name/\($0.text)" } ?? "") + "/update"
    }

    /// Methods a shadow mapping may list: GET reads, PUT and POST update.
    public static let methods: [RequestMethod] = [.get, .put, .post]
}

/// The operations of the Device Shadow MQTT API the gateway uses.
public enum ShadowOperation: String, Sendable, Hashable {
    case get
    case update
}

/// One thing's shadow, as topics.
public struct ShadowAddress: Sendable, Hashable, CustomStringConvertible {
    public var thing: String
    public var name: String?

    public init(thing: String, name: String? = nil) {
        self.thing = thing
        self.name = name
    }

    /// Reads it back from a rendered update topic
    /// (`$aws/things/T/shadow[/name/N]/update`).
    public init?(updateTopic: String) {
        let levels = updateTopic.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard levels.count >= 5, levels[0] == "$aws", levels[1] == "things", levels[3] == "shadow", levels.last == "update" else { return nil }
        if levels.count == 5 {
            self.init(thing: levels[2])
        } else if levels.count == 7, levels[4] == "name" {
            self.init(thing: levels[2], name: levels[5])
        } else {
            return nil
        }
    }

    /// `$aws/things/T/shadow` or `$aws/things/T/shadow/name/N`.
    public var base: String {
        "$aws/things/\(thing)/shadow" + (name.map { "/name/\($0)" } ?? "")
    }

    public func topic(_ operation: ShadowOperation) -> String { base + "/" + operation.rawValue }

    /// Where AWS publishes the difference between desired and reported
    /// state after each update that leaves one.
    public var deltas: String { base + "/update/delta" }

    /// Reads it back from a delta topic.
    public init?(deltaTopic: String) {
        guard deltaTopic.hasSuffix("/update/delta") else { return nil }
        self.init(updateTopic: String(deltaTopic.dropLast("/delta".count)))
    }

    /// The filter that catches the operation's `accepted` and `rejected`.
    public func responses(_ operation: ShadowOperation) -> String { topic(operation) + "/+" }

    /// For logs and diagnostics: `thing` or `thing~name`, as AWS writes it.
    public var description: String { name.map { "\(thing)~\($0)" } ?? thing }

    /// Why a rendered thing or shadow name cannot be used, or nil. AWS allows
    /// letters, digits, `:`, `_` and `-` in both; 128 bytes for a thing, 64
    /// for a shadow name.
    public static func problem(thing: String) -> String? { problem(thing, limit: 128, what: "thing name") }
    public static func problem(shadowName: String) -> String? { problem(shadowName, limit: 64, what: "shadow name") }

    private static func problem(_ text: String, limit: Int, what: String) -> String? {
        if text.isEmpty { return "\(what) is empty" }
        if text.utf8.count > limit { return "\(what) is longer than \(limit) bytes" }
        if !text.unicodeScalars.allSatisfy(isAllowed) {
            return "\(what) '\(text.count <= 64 ? text : String(text.prefix(61)) + "...")' may hold only letters, digits, ':', '_' and '-'"
        }
        return nil
    }

    static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || scalar == ":" || scalar == "_" || scalar == "-"
    }
}
