import Foundation

/// One scrape of a Prometheus text exposition (format 0.0.4), parsed into
/// samples with their labels as a dictionary, so lookups match the label
/// *set* exactly, whatever order the exporter writes the labels in.
///
/// `value(name, labels)` is nil when no sample has exactly that name and
/// exactly those labels (no subset or prefix matching: asking for
/// `iotgw_requests_total` with `["protocol": "coap"]` finds nothing, because
/// every series of that family also carries `outcome`).
struct PrometheusSamples: CustomStringConvertible {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let samples: [Sample]
    /// `# TYPE name kind` lines, by family name.
    let types: [String: String]
    let text: String

    init(_ text: String) throws {
        self.text = text
        var samples: [Sample] = []
        var types: [String: String] = [:]
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3)
                if parts.count >= 4, parts[1] == "TYPE" { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            samples.append(try Self.parseSample(line))
        }
        self.samples = samples
        self.types = types
    }

    /// `name{a="x",b="y"} value [timestamp]` or `name value [timestamp]`.
    static func parseSample(_ line: String) throws -> Sample {
        let characters = Array(line)
        var index = 0
        var name = ""
        while index < characters.count, characters[index] != "{", characters[index] != " " {
            name.append(characters[index])
            index += 1
        }
        guard !name.isEmpty else { throw HarnessError("metrics: sample without a name: \(line)") }
        var labels: [String: String] = [:]
        if index < characters.count, characters[index] == "{" {
            index += 1
            while true {
                while index < characters.count, characters[index] == "," || characters[index] == " " { index += 1 }
                guard index < characters.count else { throw HarnessError("metrics: unterminated labels: \(line)") }
                if characters[index] == "}" {
                    index += 1
                    break
                }
                var key = ""
                while index < characters.count, characters[index] != "=" {
                    key.append(characters[index])
                    index += 1
                }
                guard index + 1 < characters.count, characters[index + 1] == "\"" else {
                    throw HarnessError("metrics: label '\(key)' without a quoted value: \(line)")
                }
                index += 2
                var value = ""
                while true {
                    guard index < characters.count else { throw HarnessError("metrics: unterminated label value: \(line)") }
                    let character = characters[index]
                    index += 1
                    if character == "\"" { break }
                    if character == "\\", index < characters.count {
                        let escaped = characters[index]
                        index += 1
                        switch escaped {
                        case "n": value.append("\n")
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        default: value.append("\\"); value.append(escaped)
                        }
                        continue
                    }
                    value.append(character)
                }
                guard labels[key] == nil else { throw HarnessError("metrics: label '\(key)' twice: \(line)") }
                labels[key] = value
            }
        }
        let rest = String(characters[index...]).trimmingCharacters(in: .whitespaces)
        let fields = rest.split(separator: " ")
        guard let first = fields.first else { throw HarnessError("metrics: sample without a value: \(line)") }
        let value: Double
        switch first {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default:
            guard let parsed = Double(first) else { throw HarnessError("metrics: value '\(first)' is not a number: \(line)") }
            value = parsed
        }
        return Sample(name: name, labels: labels, value: value)
    }

    /// The value of the one sample with exactly this name and label set.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { $0.name == name && $0.labels == labels }
        return matching.count == 1 ? matching[0].value : nil
    }

    /// A histogram bucket (cumulative count) by its numeric upper bound, so
    /// `1`, `1.0` and `1e0` all find the `le` bucket of 1; `.infinity` is `+Inf`.
    func bucket(_ histogram: String, le bound: Double) -> Double? {
        let matching = samples.filter {
            $0.name == histogram + "_bucket" && $0.labels.count == 1
                && $0.labels["le"].flatMap { $0 == "+Inf" ? .infinity : Double($0) } == bound
        }
        return matching.count == 1 ? matching[0].value : nil
    }

    /// Every sample of a name (any labels).
    func all(_ name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// Whether a sample with exactly this name and labels exists.
    func has(_ name: String, _ labels: [String: String] = [:]) -> Bool { value(name, labels) != nil }

    var description: String { text }

    /// `GET /metrics` on the gateway's admin listener.
    static func scrape(_ gateway: GatewayProcess) async throws -> PrometheusSamples {
        let response = try await HTTP.request("GET", gateway.adminURL("/metrics"), timeout: 10)
        guard response.status == 200 else { throw HarnessError("GET /metrics: \(response)") }
        return try PrometheusSamples(response.text)
    }
}

extension GatewayProcess {
    /// Scrapes /metrics until `condition` holds; returns that scrape.
    @discardableResult
    func waitForMetrics(
        timeout: Duration = .seconds(30),
        _ what: String,
        _ condition: (PrometheusSamples) -> Bool
    ) async throws -> PrometheusSamples {
        var last: PrometheusSamples?
        do {
            return try await eventually(timeout: timeout, interval: .milliseconds(100), "metrics: \(what)") {
                let scrape = try await PrometheusSamples.scrape(self)
                last = scrape
                return condition(scrape) ? scrape : nil
            }
        } catch {
            let interesting = (last?.text ?? "(no scrape)")
                .split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.contains("_bucket{") }
                .joined(separator: "\n")
            throw HarnessError("\(error)\n--- last scrape (buckets left out) ---\n\(interesting)")
        }
    }
}
