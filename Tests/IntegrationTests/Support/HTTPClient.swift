import Foundation

/// What curl needs for HTTPS: the CA of the gateway's certificate, and
/// optionally a client certificate.
struct HTTPTLS: Sendable {
    var trust: String
    var clientCertificate: DevicePKI.Pair? = nil

    var arguments: [String] {
        var arguments = ["--cacert", trust]
        if let pair = clientCertificate { arguments += ["--cert", pair.certificate, "--key", pair.key] }
        return arguments
    }
}

struct HTTPResponse: Sendable, CustomStringConvertible {
    var status: Int
    /// Header fields of the final response, in order, names as sent.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// Every value of a header that may repeat (WWW-Authenticate).
    func headers(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }
    var raw: ProcessResult

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    var description: String { "\(status) \(headers.map { "\($0.name): \($0.value)" }) '\(text.prefix(200))'" }
}

/// Requests through the real `curl`, exactly as written: `--path-as-is`
/// keeps `%2F`, `%00`, `..` untouched, `--globoff` keeps `[]{}`.
enum HTTP {
    static func request(
        _ method: String,
        _ url: String,
        body: [UInt8]? = nil,
        headers: [String: String] = [:],
        timeout: Int = 15,
        tls: HTTPTLS? = nil
    ) async throws -> HTTPResponse {
        let scratch = NSTemporaryDirectory() + "iotgw-http-\(UUID().uuidString)"
        let bodyIn = scratch + ".req", bodyOut = scratch + ".body", headerOut = scratch + ".headers"
        defer { for path in [bodyIn, bodyOut, headerOut] { try? FileManager.default.removeItem(atPath: path) } }
        var arguments = [
            "-sS", "--path-as-is", "--globoff", "-X", method.uppercased(),
            "-o", bodyOut, "-D", headerOut, "-w", "%{http_code}",
            "--max-time", String(timeout),
        ]
        // No `Expect: 100-continue` round trip for larger bodies, unless the
        // caller asks for one (a body the gateway refuses by its length).
        if !headers.keys.contains(where: { $0.lowercased() == "expect" }) { arguments += ["-H", "Expect:"] }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["-H", "\(name): \(value)"] }
        arguments += tls?.arguments ?? []
        if let body {
            _ = FileManager.default.createFile(atPath: bodyIn, contents: Data(body))
            arguments += ["--data-binary", "@" + bodyIn]
            if headers.keys.contains(where: { $0.lowercased() == "content-type" }) == false {
                // curl would otherwise send application/x-www-form-urlencoded.
                arguments += ["-H", "Content-Type:"]
            }
        }
        arguments.append(url)
        let result = try await ProcessRunner.run(Tools.curl, arguments, timeout: .seconds(Double(timeout + 5)))
        guard let status = Int(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)), status > 0 else {
            throw HarnessError("no HTTP response from \(method) \(url)\n\(result.summary)")
        }
        return HTTPResponse(
            status: status,
            headers: parseHeaders(readText(headerOut)),
            body: Array(FileManager.default.contents(atPath: bodyOut) ?? Data()),
            raw: result
        )
    }

    static func post(_ url: String, body: [UInt8], contentType: String? = nil) async throws -> HTTPResponse {
        try await request("POST", url, body: body, headers: contentType.map { ["Content-Type": $0] } ?? [:])
    }

    /// The header block of the last response (after any `100 Continue`).
    static func parseHeaders(_ text: String) -> [(name: String, value: String)] {
        let blocks = text.replacingOccurrences(of: "\r\n", with: "\n")
            .components(separatedBy: "\n\n")
            .filter { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }
        guard let last = blocks.last else { return [] }
        return last.split(separator: "\n").dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
    }
}

extension HTTP {
    /// One `curl` process POSTing `body` to every URL in turn on one
    /// keep-alive connection (curl reuses it for URLs on the same host).
    /// Returns per URL the status and whether a new connection was opened.
    static func postMany(
        _ urls: [String],
        body: [UInt8],
        contentType: String = "application/json",
        timeout: Int = 120
    ) async throws -> [(status: Int, newConnection: Bool)] {
        let scratch = NSTemporaryDirectory() + "iotgw-http-many-\(UUID().uuidString)"
        let bodyFile = scratch + ".body", configFile = scratch + ".curlrc"
        defer { for path in [bodyFile, configFile] { try? FileManager.default.removeItem(atPath: path) } }
        _ = FileManager.default.createFile(atPath: bodyFile, contents: Data(body))
        let config = urls.map { "url = \"\($0)\"\noutput = \"/dev/null\"\n" }.joined()
        _ = FileManager.default.createFile(atPath: configFile, contents: Data(config.utf8))
        let arguments = [
            "-sS", "--path-as-is", "--globoff", "-X", "POST",
            "--data-binary", "@" + bodyFile, "-H", "Content-Type: \(contentType)", "-H", "Expect:",
            "-w", "%{http_code} %{num_connects}\\n",
            "--max-time", "30", "--config", configFile,
        ]
        let result = try await ProcessRunner.run(Tools.curl, arguments, timeout: .seconds(Double(timeout)))
        let lines = result.stdoutText.split(separator: "\n").map { $0.split(separator: " ") }
        let parsed = lines.compactMap { fields -> (Int, Bool)? in
            guard fields.count == 2, let status = Int(fields[0]), let connects = Int(fields[1]) else { return nil }
            return (status, connects > 0)
        }
        guard parsed.count == urls.count else {
            throw HarnessError("curl reported \(parsed.count) of \(urls.count) transfers\n\(result.summary)")
        }
        return parsed.map { (status: $0.0, newConnection: $0.1) }
    }
}
