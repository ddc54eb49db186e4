import Foundation

/// Many POSTs, each with its own body, from one `curl` process on one
/// keep-alive connection, strictly one after another: a burst that is fast
/// (no process start per request) and whose acceptance order is the order of
/// `requests`. Uses curl's `next` in a config file, which starts a new set of
/// options (URL, body, headers) for each transfer.
enum HTTPBurst {
    struct Request: Sendable {
        var url: String
        /// Sent as text/plain; only characters that need no escaping in a
        /// curl config string (no `"` or `\`).
        var body: String
    }

    /// Returns each request's HTTP status (0 when curl got no answer), in order.
    static func post(_ requests: [Request], timeout: Duration = .seconds(120)) async throws -> [Int] {
        let configFile = NSTemporaryDirectory() + "iotgw-burst-\(UUID().uuidString).curlrc"
        defer { try? FileManager.default.removeItem(atPath: configFile) }
        var config = ""
        for (index, request) in requests.enumerated() {
            precondition(!request.body.contains("\"") && !request.body.contains("\\"), "body needs escaping: \(request.body)")
            if index > 0 { config += "next\n" }
            config += """
                url = "\(request.url)"
                request = "POST"
                data-binary = "\(request.body)"
                header = "Content-Type: text/plain"
                header = "Expect:"
                output = "/dev/null"
                write-out = "%{http_code}\\n"
                max-time = 30
                path-as-is
                globoff

                """
        }
        _ = FileManager.default.createFile(atPath: configFile, contents: Data(config.utf8))
        let result = try await ProcessRunner.run(Tools.curl, ["-sS", "--config", configFile], timeout: timeout)
        let statuses = result.stdoutText.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard statuses.count == requests.count else {
            throw HarnessError("curl reported \(statuses.count) of \(requests.count) transfers\n\(result.summary)")
        }
        return statuses
    }
}
