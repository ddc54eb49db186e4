import Foundation
import TestSupport

/// What curl got back.
struct CurlResponse {
    var status: Int
    /// Header names in lower case; a repeated header keeps its last value.
    var headers: [String: String]
    var body: String
    /// Every header line in order, names in lower case.
    var fields: [(name: String, value: String)] = []

    /// Every value of a header that may repeat (`WWW-Authenticate`).
    func values(of name: String) -> [String] {
        fields.filter { $0.name == name }.map(\.value)
    }
}

struct CurlError: Error, CustomStringConvertible {
    var status: Int32 = -1
    var description: String
}

/// A real HTTP client: curl, run as a separate process.
final class Curl {
    private let process = Process()
    private let output: CapturedOutput
    private let errors: CapturedOutput

    /// Starts curl; `finish()` waits for it.
    init(_ arguments: [String], includeHeaders: Bool = true) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["--silent", "--show-error", "--max-time", "5"]
            + (includeHeaders ? ["--include"] : []) + arguments
        output = try CapturedOutput()
        errors = try CapturedOutput()
        process.standardOutput = output.handle
        process.standardError = errors.handle
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    func finish() throws -> CurlResponse {
        try Self.parse(finishRaw())
    }

    /// curl's exit status and whatever it printed.
    func finishRaw() throws -> String {
        process.waitUntilExit()
        let data = output.data
        let problem = errors.data
        guard process.terminationStatus == 0 else {
            throw CurlError(
                status: process.terminationStatus,
                description: "curl exited \(process.terminationStatus): \(String(decoding: problem, as: UTF8.self))"
            )
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Runs curl to the end.
    static func run(_ arguments: [String]) throws -> CurlResponse {
        try Curl(arguments).finish()
    }

    private static func parse(_ text: String) throws -> CurlResponse {
        var rest = Substring(text)
        while true {
            guard let end = rest.range(of: "\r\n\r\n") else {
                throw CurlError(description: "no header block in: \(text)")
            }
            let block = rest[..<end.lowerBound]
            rest = rest[end.upperBound...]
            let lines = block.components(separatedBy: "\r\n")
            let statusParts = lines[0].split(separator: " ")
            guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
                throw CurlError(description: "bad status line: \(lines[0])")
            }
            if status == 100 { continue }  // interim response before the real one
            var headers: [String: String] = [:]
            var fields: [(name: String, value: String)] = []
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                headers[name] = value
                fields.append((name, value))
            }
            return CurlResponse(status: status, headers: headers, body: String(rest), fields: fields)
        }
    }
}
