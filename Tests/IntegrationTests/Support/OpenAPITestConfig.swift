import Foundation

/// The gateway configuration the OpenAPI tests run against (the contract
/// test's schemathesis run and the reachability test): one mapping of each
/// kind behind HTTPS with a device registry, and an admin listener.
enum OpenAPITestConfig {
    /// A mapping of each kind: readings (raw, envelope with a `{rest*}`,
    /// anonymous with ack: delivered, a JSON batch), a shadow and commands.
    static let mappings = """
        - name: temperature
          resource: /sensors/{device}/temperature
          identity: device
          topic: it/sensors/{device}/temperature
        - name: other
          resource: /sensors/{device}/{metric*}
          identity: device
          topic: it/sensors/{device}/{metric}
          payload: envelope
        - name: open
          resource: /open/{x}
          auth: anonymous
          methods: [POST, PUT, PATCH]
          topic: it/open/{x}
          ack: delivered
        - name: batch
          resource: /batch/{device}
          identity: device
          topic: it/batch/{device}
          payload: json
          batch: true
        - name: config
          resource: /things/{device}/config
          identity: device
          protocols: [http]
          shadow: {thing: "{device}", name: config, timeout: 3s}
        - name: commands
          resource: /commands/{device}
          identity: device
          commands: {topic: "cmd/{device}/#", format: envelope}

        """

    /// HTTPS with these devices in the registry. Lockouts off: refusals
    /// from one address would otherwise lock it out (429 is then not in
    /// the document for the readings).
    static func settings(pki: DevicePKI, devices: [TestDevice] = [SecureSetup.kitchen, SecureSetup.old]) -> GatewaySettings {
        var settings = GatewaySettings(mappings: mappings)
        settings.security = GatewaySecurity(pki: pki, devices: devices, devicesExtra: ["max_failures: 0"])
        return settings
    }
}
