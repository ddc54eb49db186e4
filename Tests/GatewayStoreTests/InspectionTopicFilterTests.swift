import Testing
@testable import GatewayStore

/// MQTT topic filter matching (MQTT 3.1.1 §4.7 / 5.0 §4.7) as `queue purge
/// --topic` uses it.
@Suite("Inspection: MQTT topic filters")
struct InspectionTopicFilterTests {
    @Test("matches as the MQTT spec says", arguments: [
        // `+`: exactly one level, which may be empty.
        ("a/+/c", "a/b/c", true),
        ("a/+/c", "a//c", true),
        ("a/+/c", "a/b/d", false),
        ("a/+/c", "a/b/c/d", false),
        ("a/+/c", "a/c", false),
        ("+", "a", true),
        ("+", "/a", false),
        ("+", "a/b", false),
        ("+/+", "/a", true),
        ("/+", "/a", true),
        ("a/+", "a", false),
        ("a/+", "a/", true),
        // `#`: the parent level and everything below it.
        ("a/#", "a", true),
        ("a/#", "a/b", true),
        ("a/#", "a/b/c", true),
        ("a/#", "ab", false),
        ("a/#", "b/a", false),
        ("a/b/#", "a/b", true),
        ("a/b/#", "a/b/c/d", true),
        ("a/b/#", "a/c", false),
        ("#", "a", true),
        ("#", "a/b/c", true),
        ("#", "/", true),
        ("+/#", "a", true),
        ("+/+/#", "a", false),
        // No wildcard: the exact topic, byte for byte.
        ("a/b", "a/b", true),
        ("a/b", "a/b/", false),
        ("a/b", "A/b", false),
        ("dt/sensors/+/temperature", "dt/sensors/d1/temperature", true),
        ("dt/sensors/+/temperature", "dt/sensors/d1/humidity", false),
        ("dt/sensors/ü/+", "dt/sensors/ü/x", true),
        // `$` topics are not matched by a leading wildcard, only spelled out.
        ("#", "$SYS/broker", false),
        ("+/broker", "$SYS/broker", false),
        ("+", "$aws", false),
        ("$SYS/#", "$SYS/broker", true),
        ("$aws/+/x", "$aws/rules/x", true),
        ("a/#", "a/$b", true),
    ])
    func matching(filter: String, topic: String, expected: Bool) throws {
        let parsed = try TopicFilter(filter)
        #expect(parsed.matches(topic) == expected, "'\(filter)' vs '\(topic)'")
    }

    @Test("refuses what the spec forbids", arguments: [
        ("", "empty"),
        ("a/#/b", "'#' must be the last level"),
        ("a#", "'+' and '#' must stand alone in their level"),
        ("a/b+", "'+' and '#' must stand alone in their level"),
        ("+a/b", "'+' and '#' must stand alone in their level"),
        ("##", "'+' and '#' must stand alone in their level"),
        ("a\u{0}b", "contains NUL"),
    ])
    func invalid(filter: String, reason: String) {
        #expect(throws: InspectionError.invalidTopicFilter(filter: filter, reason: reason)) {
            try TopicFilter(filter)
        }
    }

    @Test("accepts empty levels and a lone wildcard level")
    func validEdges() throws {
        for filter in ["/", "a//b", "+/+/+", "#", "+", "/#", "a/+/#"] {
            #expect(throws: Never.self, "\(filter)") { try TopicFilter(filter) }
        }
    }
}
