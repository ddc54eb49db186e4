import Testing
@testable import GatewayCore

@Suite("AWS IoT Core limits")
struct UpstreamLimitsTests {
    let aws = UpstreamLimits.awsIotCore

    func template(_ text: String) -> TopicTemplate { try! TopicTemplate.parse(text).get() }

    @Test func topicsWithinTheLimitsPass() {
        #expect(aws.problem(withTopic: "dt/app/site/thing/temperature") == nil)
        #expect(aws.problem(withTopic: String(repeating: "a", count: 256)) == nil)
        #expect(aws.problem(withTopic: "a/b/c/d/e/f/g/h") == nil)  // 7 slashes
    }

    @Test func tooLongOrTooDeepTopicsFail() {
        #expect(aws.problem(withTopic: String(repeating: "a", count: 257))?.contains("257 bytes") == true)
        #expect(aws.problem(withTopic: "a/b/c/d/e/f/g/h/i")?.contains("8 '/' separators") == true)
        // Bytes, not characters: 129 two-byte characters are 258 bytes.
        #expect(aws.problem(withTopic: String(repeating: "é", count: 129)) != nil)
    }

    @Test func theBasicIngestPrefixDoesNotCountTowardSlashes() {
        #expect(aws.problem(withTopic: "$aws/rules/my_rule/a/b/c/d/e/f/g/h") == nil)
        #expect(aws.problem(withTopic: "$aws/rules/my_rule/a/b/c/d/e/f/g/h/i") != nil)
    }

    @Test(arguments: [
        "$aws/things/pump-1/shadow/update",
        "$aws/things/pump-1/shadow/get",
        "$aws/things/pump:1/shadow/name/config/delete",
        "$aws/rules/ingest_all/dt/x",
    ])
    func allowedDollarTopics(_ topic: String) {
        #expect(aws.problem(withTopic: topic) == nil)
    }

    @Test(arguments: [
        "$SYS/broker",
        "$aws/things/pump/shadow/update/accepted",
        "$aws/things/pump/shadow/name/x/patch",
        "$aws/rules/bad-rule-name/x",
        "$aws/rules/only_rule",
        "$aws/events/presence",
    ])
    func refusedDollarTopics(_ topic: String) {
        #expect(aws.problem(withTopic: topic) != nil)
    }

    @Test func genericAllowsWhatMQTTAllows() {
        #expect(UpstreamLimits.generic.problem(withTopic: "$SYS/x/a/b/c/d/e/f/g/h/i") == nil)
        #expect(UpstreamLimits.generic.problem(withTopic: String(repeating: "a", count: 70_000)) != nil)
    }

    @Test func templatesThatCanNeverFitAreFound() {
        #expect(aws.problem(withTemplate: template("dt/{device}/t"), gateway: "gw") == nil)
        #expect(aws.problem(withTemplate: template(String(repeating: "x", count: 251) + "/{a}/{b}/{c}"), gateway: "gw") != nil)
        #expect(aws.problem(withTemplate: template("a/b/c/d/e/f/g/{h}/{i}"), gateway: "gw")?.contains("8 '/'") == true)
        #expect(aws.problem(withTemplate: template("$aws/rules/r/a/b/c/d/e/f/g/{h}"), gateway: "gw") == nil)
    }

    @Test func dollarTemplatesMustSpellOutTheFixedWords() {
        #expect(aws.problem(withTemplate: template("$aws/things/{thing}/shadow/update"), gateway: "gw") == nil)
        #expect(aws.problem(withTemplate: template("$aws/things/{thing}/shadow/name/{shadow}/update"), gateway: "gw") == nil)
        #expect(aws.problem(withTemplate: template("$aws/rules/{rule}/dt/x"), gateway: "gw") == nil)
        #expect(aws.problem(withTemplate: template("$aws/things/{thing}/shadow/{action}"), gateway: "gw") != nil)
        #expect(aws.problem(withTemplate: template("$SYS/{x}"), gateway: "gw") != nil)
        #expect(aws.problem(withTemplate: template("$aws/rules/my-rule/{x}"), gateway: "gw")?.contains("rule name") == true)
    }

    @Test func theGatewayNameCountsAtItsRealLength() {
        let name = String(repeating: "g", count: 120)
        #expect(aws.problem(withTemplate: template("dt/{gateway}/" + String(repeating: "p", count: 140)), gateway: "gw") == nil)
        #expect(aws.problem(withTemplate: template("dt/{gateway}/" + String(repeating: "p", count: 140)), gateway: name) != nil)
    }
}

@Suite("Publish limiter")
struct PublishLimiterTests {
    @Test func unlimitedNeverWaits() {
        var limiter = PublishLimiter(publishRate: nil, byteRate: nil)
        for index in 0..<1000 {
            #expect(limiter.delay(bytes: 1_000_000, now: Double(index) * 0.0001) == 0)
            limiter.record(bytes: 1_000_000, now: Double(index) * 0.0001)
        }
    }

    @Test func noWindowEverHoldsMoreThanTheRate() {
        var limiter = PublishLimiter(publishRate: 50, byteRate: nil, window: 1.05)
        var now = 0.0
        var sent: [Double] = []
        while sent.count < 500 {
            let wait = limiter.delay(bytes: 10, now: now)
            if wait > 0 { now += wait; continue }
            limiter.record(bytes: 10, now: now)
            sent.append(now)
            now += 0.001
        }
        for (index, start) in sent.enumerated() {
            let inWindow = sent[index...].prefix { $0 < start + 1.05 }.count
            #expect(inWindow <= 50)
        }
        // And it does not throttle harder than it must: about 50 per 1.05 s,
        // evenly spaced.
        #expect(sent.last! < 500 / 50 * 1.05 + 0.1)
        let gaps = zip(sent.dropFirst(), sent).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 1.05 / 50 - 1e-9 })
    }

    @Test func bytesPerWindowAreBounded() {
        var limiter = PublishLimiter(publishRate: nil, byteRate: 1000, window: 1)
        #expect(limiter.delay(bytes: 600, now: 0) == 0)
        limiter.record(bytes: 600, now: 0)
        #expect(limiter.delay(bytes: 300, now: 0.1) == 0)
        limiter.record(bytes: 300, now: 0.1)
        // 600 + 300 + 200 > 1000: wait until the first leaves the window.
        #expect(abs(limiter.delay(bytes: 200, now: 0.2) - 0.8) < 1e-9)
        #expect(limiter.delay(bytes: 200, now: 1.0) == 0)
    }

    @Test func aMessageLargerThanTheBudgetGoesAloneOnceTheWindowIsEmpty() {
        var limiter = PublishLimiter(publishRate: nil, byteRate: 100, window: 1)
        limiter.record(bytes: 50, now: 0)
        #expect(abs(limiter.delay(bytes: 500, now: 0.5) - 0.5) < 1e-9)
        #expect(limiter.delay(bytes: 500, now: 1.0) == 0)
    }
}

@Suite("Shard hash")
struct ShardHashTests {
    @Test func stableAcrossRunsAndSpreadAcrossShards() {
        #expect(ShardHash.of("dt/a") == ShardHash.of("dt/a"))
        #expect(ShardHash.of("") == 0xcbf2_9ce4_8422_2325)
        var counts = [0, 0, 0]
        for index in 0..<3000 { counts[ShardHash.shard(ShardHash.of("device-\(index)"), of: 3)] += 1 }
        #expect(counts.allSatisfy { $0 > 800 })
    }

    @Test func shardMatchesSQLiteSignedModulo() {
        let hash: UInt64 = 0xFFFF_FFFF_FFFF_FFFF  // -1 as SQLite stores it
        #expect(ShardHash.shard(hash, of: 3) == 2)  // ((-1 % 3) + 3) % 3
    }
}
