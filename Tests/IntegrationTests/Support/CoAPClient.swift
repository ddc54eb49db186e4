import Foundation

/// The final response to a CoAP request, as `coap-client-notls` saw it.
struct CoAPResponse: Sendable, CustomStringConvertible {
    /// `2.04`, `4.04`, …
    var code: String
    /// Message type of the response: `ACK` (piggybacked), `CON` (separate), `NON`.
    var type: String
    /// The options as libcoap prints them, e.g. `Max-Age:30, Content-Format:text/plain`.
    var options: String
    /// Diagnostic payload of an error response (printable characters).
    var diagnostic: String
    /// The payload of a successful response, exactly as received (`-o`).
    var body: [UInt8] = []
    var raw: ProcessResult

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    var maxAge: Int? {
        guard let range = options.range(of: #"Max-Age:(\d+)"#, options: .regularExpression) else { return nil }
        return Int(options[range].dropFirst("Max-Age:".count))
    }

    var description: String { "\(code) (\(type)) [\(options)] '\(diagnostic)'" }
}

/// How a request over DTLS authenticates, as `coap-client-openssl` takes it.
enum CoAPSecurity: Sendable {
    /// `-u identity -k key` (the key as text).
    case psk(identity: String, key: String)
    /// `-c cert -j key`, trusting the gateway's certificate through `-R ca`.
    case certificate(DevicePKI.Pair, trust: String)

    var arguments: [String] {
        switch self {
        case .psk(let identity, let key): return ["-u", identity, "-k", key]
        case .certificate(let pair, let trust): return ["-c", pair.certificate, "-j", pair.key, "-R", trust]
        }
    }
}

/// Requests through the real `coap-client-notls` from libcoap3-bin
/// (`coap-client-openssl` over DTLS).
///
/// It is run with `-v 6`, where libcoap prints every PDU it sends and
/// receives on stdout: `v:1 t:ACK c:4.04 i:1234 {01} [ options ] :: 'payload'`.
/// The last received response that is not an empty ACK (`0.00`) or a Block1
/// `2.31 Continue` is the answer. For error classes it also prints
/// `4.04 <diagnostic>` on stderr, which gives the diagnostic text.
enum CoAP {
    /// - Parameters:
    ///   - path: the URI path, percent-encoded as coap-client should send it
    ///     (it decodes each segment into one Uri-Path option: `a%2Fb` is one
    ///     option `a/b`).
    ///   - contentFormat: CoAP Content-Format number (0 text/plain, 42
    ///     octet-stream, 50 JSON).
    ///   - confirmable: CON (true) or NON.
    ///   - blockSize: Block1 size for large bodies (coap-client uses Block1
    ///     on its own past 1024 bytes).
    static func request(
        _ method: String = "post",
        port: UInt16,
        path: String,
        payload: [UInt8]? = nil,
        contentFormat: Int? = nil,
        confirmable: Bool = true,
        blockSize: Int? = nil,
        wait: Int = 10,
        security: CoAPSecurity? = nil
    ) async throws -> CoAPResponse {
        let (response, result) = try await attempt(
            method, port: port, path: path, payload: payload, contentFormat: contentFormat,
            confirmable: confirmable, blockSize: blockSize, wait: wait, security: security
        )
        guard let response else {
            throw HarnessError("no CoAP response to \(method.uppercased()) \(path)\n\(result.summary)")
        }
        return response
    }

    /// Like `request`, but no answer at all (e.g. a refused DTLS handshake)
    /// is a result, not an error.
    static func attempt(
        _ method: String = "post",
        port: UInt16,
        path: String,
        payload: [UInt8]? = nil,
        contentFormat: Int? = nil,
        confirmable: Bool = true,
        blockSize: Int? = nil,
        wait: Int = 10,
        security: CoAPSecurity? = nil
    ) async throws -> (CoAPResponse?, ProcessResult) {
        var arguments = ["-m", method.lowercased(), "-v", "6", "-B", String(wait)]
        arguments += security?.arguments ?? []
        var payloadFile: String?
        if let payload {
            let file = NSTemporaryDirectory() + "iotgw-coap-\(UUID().uuidString).bin"
            _ = FileManager.default.createFile(atPath: file, contents: Data(payload))
            payloadFile = file
            arguments += ["-f", file]
        }
        let outputFile = NSTemporaryDirectory() + "iotgw-coap-\(UUID().uuidString).out"
        arguments += ["-o", outputFile]
        defer {
            if let payloadFile { try? FileManager.default.removeItem(atPath: payloadFile) }
            try? FileManager.default.removeItem(atPath: outputFile)
        }
        if let contentFormat { arguments += ["-t", String(contentFormat)] }
        if !confirmable { arguments.append("-N") }
        if let blockSize { arguments += ["-b", String(blockSize)] }
        arguments.append("\(security == nil ? "coap" : "coaps")://127.0.0.1:\(port)\(path)")

        // From a port handed out by LoopbackPorts, never one the kernel
        // picks (it could be a gateway's that is not bound yet); another one
        // if something took it in the meantime.
        var result: ProcessResult
        var attempts = 0
        repeat {
            attempts += 1
            let local = ["-a", "127.0.0.1", "-p", String(try LoopbackPorts.udp())]
            let tool = security == nil ? Tools.coapClient : Tools.coapClientDTLS
            result = try await ProcessRunner.run(tool, local + arguments, timeout: .seconds(Double(wait + 10)))
        } while attempts < 5 && result.stdoutText.contains("Address already in use")
        var response = parse(result)
        response?.body = Array(FileManager.default.contents(atPath: outputFile) ?? Data())
        return (response, result)
    }

    static func post(
        port: UInt16, path: String, payload: [UInt8], contentFormat: Int? = nil, confirmable: Bool = true
    ) async throws -> CoAPResponse {
        try await request("post", port: port, path: path, payload: payload, contentFormat: contentFormat, confirmable: confirmable)
    }

    /// The code of every final response in a run (one per request with `-G`).
    static func finalCodes(_ result: ProcessResult) -> [String] {
        result.stdoutText.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("v:1 "), let field = line.split(separator: " ").first(where: { $0.hasPrefix("c:") }) else { return nil }
            let code = String(field.dropFirst(2))
            // Requests are printed too: only responses (class 2 to 5) count.
            guard let first = code.first, "2345".contains(first), code != "2.31" else { return nil }
            return code
        }
    }

    static func parse(_ result: ProcessResult) -> CoAPResponse? {
        let pduLine = try! NSRegularExpression(
            pattern: #"^v:1 t:(CON|NON|ACK|RST) c:([0-9]\.[0-9]{2}) i:[0-9a-fA-F]+ \{[0-9a-fA-F]*\} \[ ?(.*?) ?\](?: :: (.*))?$"#
        )
        var last: (type: String, code: String, options: String, payload: String)?
        for line in result.stdoutText.split(separator: "\n") {
            let text = String(line)
            let range = NSRange(text.startIndex..., in: text)
            guard let match = pduLine.firstMatch(in: text, range: range) else { continue }
            func group(_ index: Int) -> String {
                guard let r = Range(match.range(at: index), in: text) else { return "" }
                return String(text[r])
            }
            let code = group(2)
            if code == "0.00" || code == "2.31" { continue }
            last = (group(1), code, group(3), group(4))
        }
        guard let last else { return nil }
        var diagnostic = ""
        // stderr: "4.04 Not Found" (non-printable bytes shown as '.').
        for line in result.stderrText.split(separator: "\n") where line.hasPrefix(last.code) {
            diagnostic = String(line.dropFirst(last.code.count)).trimmingCharacters(in: .whitespaces)
        }
        if diagnostic.isEmpty, last.payload.hasPrefix("'"), last.payload.hasSuffix("'"), last.payload.count >= 2 {
            diagnostic = String(last.payload.dropFirst().dropLast())
        }
        return CoAPResponse(code: last.code, type: last.type, options: last.options, diagnostic: diagnostic, raw: result)
    }
}
