/// An MQTT topic filter (MQTT 3.1.1 §4.7, 5.0 §4.7): `+` matches exactly one
/// level, `#` matches the parent level and any number of levels below it.
///
/// Topics starting with `$` are not matched by a filter whose first level is
/// a wildcard ([MQTT-4.7.2-1]); `$SYS/#` or `$aws/+/x` still match them.
public struct TopicFilter: Sendable, Equatable, CustomStringConvertible {
    /// The filter as written.
    public let text: String
    private let levels: [Level]

    private enum Level: Sendable, Equatable {
        case exact([UInt8])
        case singleLevel
        case multiLevel
    }

    /// Validates `text` as the spec defines a topic filter: not empty, at most
    /// 65,535 bytes, no NUL, `+` and `#` only as whole levels, `#` only last.
    public init(_ text: String) throws(InspectionError) {
        guard !text.isEmpty else { throw .invalidTopicFilter(filter: text, reason: "empty") }
        guard text.utf8.count <= 65_535 else {
            throw .invalidTopicFilter(filter: text, reason: "longer than 65535 bytes")
        }
        guard !text.utf8.contains(0) else { throw .invalidTopicFilter(filter: text, reason: "contains NUL") }
        let parts = text.utf8.split(separator: Self.slash, omittingEmptySubsequences: false)
        var levels: [Level] = []
        for (index, part) in parts.enumerated() {
            if part.elementsEqual("#".utf8) {
                guard index == parts.count - 1 else {
                    throw .invalidTopicFilter(filter: text, reason: "'#' must be the last level")
                }
                levels.append(.multiLevel)
            } else if part.elementsEqual("+".utf8) {
                levels.append(.singleLevel)
            } else if part.contains(UInt8(ascii: "#")) || part.contains(UInt8(ascii: "+")) {
                throw .invalidTopicFilter(filter: text, reason: "'+' and '#' must stand alone in their level")
            } else {
                levels.append(.exact(Array(part)))
            }
        }
        self.text = text
        self.levels = levels
    }

    public func matches(_ topic: String) -> Bool {
        topic.utf8.withContiguousStorageIfAvailable { matches(bytes: $0) } ?? matches(bytes: Array(topic.utf8))
    }

    /// Walks the filter's levels against the topic's, splitting the topic
    /// as it goes (no allocation).
    private func matches(bytes topic: some Collection<UInt8>) -> Bool {
        if topic.first == UInt8(ascii: "$"), levels.first == .singleLevel || levels.first == .multiLevel {
            return false
        }
        var start = topic.startIndex
        // A topic always has at least one level (possibly empty); false once
        // its last level has been consumed.
        var topicHasLevel = true
        for level in levels {
            if level == .multiLevel { return true }
            guard topicHasLevel else { return false }
            let end = topic[start...].firstIndex(of: Self.slash) ?? topic.endIndex
            if case .exact(let expected) = level, !topic[start..<end].elementsEqual(expected) {
                return false
            }
            if end == topic.endIndex {
                topicHasLevel = false
            } else {
                start = topic.index(after: end)
            }
        }
        return !topicHasLevel
    }

    public var description: String { text }

    private static let slash = UInt8(ascii: "/")
}
