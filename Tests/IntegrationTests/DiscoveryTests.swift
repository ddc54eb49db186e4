import Foundation
import Testing

/// `/.well-known/core` (RFC 6690) read with the real libcoap client: every
/// mapped CoAP resource the asker may use, with `rt`, `if`, `ct`; query
/// filters; block-wise transfer of a long list; an authenticated device
/// sees its own id in identity-bound paths, and nothing it may not use.
@Suite("Discovery")
struct DiscoveryTests {
    static let mappings = """
        - name: temperature
          resource: /sensors/{device}/temperature
          identity: device
          topic: it/sensors/{device}/temperature
          rt: [temperature-c, sensor]
          if: core.s
          payload: senml
        - name: kitchen-only
          resource: /kitchen/{anything}/state
          allow: [kitchen]
          topic: it/kitchen/{device_id}/state
          ct: 0
        - name: open
          resource: /open/{x}
          auth: anonymous
          topic: it/open/{x}
          rt: open-thing
          payload: json
        - name: http-only
          resource: /web/{x}
          auth: anonymous
          protocols: [http]
          topic: it/web/{x}
        - name: rest
          resource: /raw/{path*}
          auth: anonymous
          topic: it/raw/{path}

        """

    /// Links as a parser reads them: `<target>` then `;name=value` attributes,
    /// links separated by commas outside quotes and angle brackets.
    static func parse(_ document: String) -> [(target: String, attributes: [String: String])] {
        var links: [(String, [String: String])] = []
        var parts: [String] = []
        var current = ""
        var quoted = false
        var bracketed = false
        for character in document {
            if character == "\"" { quoted.toggle() }
            if character == "<" { bracketed = true }
            if character == ">" { bracketed = false }
            if character == ",", !quoted, !bracketed { parts.append(current); current = ""; continue }
            current.append(character)
        }
        if !current.isEmpty { parts.append(current) }
        for part in parts {
            guard part.hasPrefix("<"), let close = part.firstIndex(of: ">") else { continue }
            let target = String(part[part.index(after: part.startIndex)..<close])
            var attributes: [String: String] = [:]
            for attribute in part[part.index(after: close)...].split(separator: ";") where !attribute.isEmpty {
                let pair = attribute.split(separator: "=", maxSplits: 1)
                attributes[String(pair[0])] = pair.count > 1 ? String(pair[1]).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) : ""
            }
            links.append((target, attributes))
        }
        return links
    }

    @Test("anonymous client: the anonymous CoAP mappings with their attributes; filters by rt, href prefix and ct; a long list block-wise")
    func anonymous() async throws {
        var settings = GatewaySettings(mappings: Self.mappings)
        // Enough anonymous mappings that the document needs several 64-byte blocks.
        settings.mappings += (1...12).map { "- {name: extra-\($0), resource: \"/extra/\($0)/{x}\", auth: anonymous, topic: \"it/extra/\($0)/{x}\", rt: extra}\n" }.joined()
        try await EndToEnd.run("discovery-anonymous", settings: settings) { env in
            let port = env.gateway.coapPort
            let whole = try await CoAP.request("get", port: port, path: "/.well-known/core")
            #expect(whole.code == "2.05", "\(whole)")
            #expect(whole.options.contains("application/link-format"), "\(whole)")
            let links = Self.parse(whole.bodyText)
            #expect(links.map(\.target) == ["/open/{x}", "/raw/{+path}"] + (1...12).map { "/extra/\($0)/{x}" }, "\(whole.bodyText)")
            let open = try #require(links.first { $0.target == "/open/{x}" })
            #expect(open.attributes["rt"] == "open-thing", "\(open)")
            #expect(open.attributes["ct"] == "50 60", "\(open)")

            let byType = try await CoAP.request("get", port: port, path: "/.well-known/core?rt=open-thing")
            #expect(Self.parse(byType.bodyText).map(\.target) == ["/open/{x}"], "\(byType)")
            let byPrefix = try await CoAP.request("get", port: port, path: "/.well-known/core?href=/extra/1*")
            #expect(Self.parse(byPrefix.bodyText).map(\.target) == ["/extra/1/{x}", "/extra/10/{x}", "/extra/11/{x}", "/extra/12/{x}"], "\(byPrefix)")
            let byFormat = try await CoAP.request("get", port: port, path: "/.well-known/core?ct=60")
            #expect(Self.parse(byFormat.bodyText).map(\.target) == ["/open/{x}"], "\(byFormat)")
            let none = try await CoAP.request("get", port: port, path: "/.well-known/core?rt=nothing")
            #expect(none.code == "2.05" && none.body.isEmpty, "\(none)")

            // 64-byte blocks: coap-client asks for each in turn and joins them.
            let blocks = try await CoAP.request("get", port: port, path: "/.well-known/core", blockSize: 64)
            #expect(blocks.bodyText == whole.bodyText, "block-wise: \(blocks.bodyText)")
            #expect(blocks.raw.stdoutText.contains("Block2"), "no Block2 option seen:\n\(blocks.raw.stdoutText.suffix(2000))")
        }
    }

    @Test("device over DTLS: its identity-bound path filled with its id, allow-listed mappings only for its group")
    func device() async throws {
        let pki = try await DevicePKI.shared()
        var settings = SecureSetup.settings(pki)
        settings.mappings = Self.mappings
        try await EndToEnd.run("discovery-device", settings: settings) { env in
            let port = env.gateway.dtlsPort
            let kitchen = try await CoAP.request("get", port: port, path: "/.well-known/core", security: SecureSetup.psk(SecureSetup.kitchen))
            let kitchenLinks = Self.parse(kitchen.bodyText)
            #expect(kitchenLinks.map(\.target) == ["/sensors/kitchen-1/temperature", "/kitchen/{anything}/state", "/open/{x}", "/raw/{+path}"], "\(kitchen.bodyText)")
            let temperature = try #require(kitchenLinks.first)
            #expect(temperature.attributes["rt"] == "temperature-c sensor", "\(temperature)")
            #expect(temperature.attributes["if"] == "core.s", "\(temperature)")
            #expect(temperature.attributes["ct"] == "110 112", "\(temperature)")
            #expect(kitchenLinks[1].attributes["ct"] == "0", "\(kitchenLinks[1])")

            let hall = try await CoAP.request("get", port: port, path: "/.well-known/core", security: SecureSetup.psk(SecureSetup.hall))
            #expect(Self.parse(hall.bodyText).map(\.target) == ["/sensors/hall-2/temperature", "/open/{x}", "/raw/{+path}"], "\(hall.bodyText)")
        }
    }
}
