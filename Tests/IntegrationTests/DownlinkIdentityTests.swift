import Foundation
import Testing

/// Downlink is bound to identity like uplink: over HTTPS and DTLS, a device
/// reads, follows and takes only its own shadow and commands.
@Suite("Downlink identity")
struct DownlinkIdentityTests {
    static let mappings = """
        - name: shadow
          resource: /things/{device}/shadow
          identity: device
          shadow: {thing: "{device}", timeout: 2s}
        - name: commands
          resource: /commands/{device}
          identity: device
          commands: {topic: "it-cmd/{device}/#"}

        """

    @Test("a device reads its own shadow and commands; another device's are 403 / 4.03 and leave them untouched")
    func ownShadowAndCommandsOnly() async throws {
        let pki = try await DevicePKI.shared()
        var settings = SecureSetup.settings(pki)
        settings.mappings = Self.mappings
        settings.logLevel = "debug"
        try await EndToEnd.run("downlink-identity", settings: settings) { env in
            let service = try await ShadowService.started(broker: env.broker, directory: env.directory)
            let gateway = env.gateway
            let tls = HTTPTLS(trust: pki.serverCA)
            let kitchen = SecureSetup.bearer("tok-kitchen-1")
            func https(_ method: String, _ path: String, _ body: String? = nil) async throws -> HTTPResponse {
                try await HTTP.request(method, gateway.httpsURL(path), body: body.map { Array($0.utf8) }, headers: kitchen, tls: tls)
            }

            // Its own shadow: update and read.
            let update = try await https("POST", "/things/kitchen-1/shadow", #"{"t":21}"#)
            #expect(update.status == 200, "\(update)")
            let own = try await https("GET", "/things/kitchen-1/shadow")
            #expect(own.status == 200, "\(own)")
            // Another device's shadow: neither read, followed nor written.
            for (method, path, body) in [("GET", "/things/hall-2/shadow", nil), ("GET", "/things/hall-2/shadow?wait=2", nil),
                                         ("POST", "/things/hall-2/shadow", #"{"t":99}"#)] {
                let refused = try await https(method, path, body)
                #expect(refused.status == 403, "\(method) \(path): \(refused)")
            }
            // Nor over plain HTTP, where nobody is authenticated.
            let plain = try await HTTP.request("GET", gateway.httpURL("/things/kitchen-1/shadow"))
            #expect(plain.status == 401, "\(plain)")

            // Commands: hall-2 follows its own over DTLS; kitchen-1 cannot take them.
            let hall = SecureSetup.psk(SecureSetup.hall)
            let first = try await CoAP.request("get", port: gateway.dtlsPort, path: "/commands/hall-2", security: hall)
            #expect(first.code == "2.03", "\(first)")
            let observeOther = try await CoAP.request("get", port: gateway.dtlsPort, path: "/commands/hall-2", security: SecureSetup.psk(SecureSetup.kitchen))
            #expect(observeOther.code == "4.03", "\(observeOther)")
            try await eventually(timeout: .seconds(20), "the subscription to hall-2's commands") {
                gateway.currentLog.contains("subscription granted") && gateway.currentLog.contains("it-cmd/hall-2/#") ? true : nil
            }
            try await env.broker.publish(topic: "it-cmd/hall-2/light", payload: Array("on".utf8))
            try await eventually(timeout: .seconds(10), "the command to be kept") {
                gateway.currentLog.contains("command kept") ? true : nil
            }
            let stolen = try await https("GET", "/commands/hall-2")
            #expect(stolen.status == 403, "\(stolen)")
            let mine = try await CoAP.request("get", port: gateway.dtlsPort, path: "/commands/hall-2", security: hall)
            #expect(mine.code == "2.05" && mine.bodyText == "on", "\(mine) '\(mine.bodyText)'")
            // No request for hall-2's shadow ever reached the service; kitchen-1's did.
            #expect(service.log.contains("request $aws/things/kitchen-1/shadow/update"), "\(service.log)")
            #expect(!service.log.contains("$aws/things/hall-2/"), "\(service.log)")
            await service.stop()
        }
    }
}
