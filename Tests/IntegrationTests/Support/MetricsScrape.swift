import Foundation

/// Reads the gateway's `/metrics` into `series → value`, keyed exactly as the
/// text format writes a sample's name and labels, e.g.
/// `iotgw_messages_delivered_total{qos="1"}`.
enum Metrics {
    static func scrape(_ url: String) async throws -> [String: Double] {
        let response = try await HTTP.request("GET", url)
        guard response.status == 200 else { throw HarnessError("GET \(url): \(response)") }
        return parse(response.text)
    }

    static func parse(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }
}
