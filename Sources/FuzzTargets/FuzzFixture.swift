import Crypto
import Foundation
import GatewayCore
import X509

/// A gateway configuration directory laid out like /etc/iot-gateway (the
/// Debian package's example, systemd/gateway.yaml): certificates, a device
/// registry and a mapping table, written once per process into a temporary
/// directory. The request targets route through the table it loads; the
/// loader targets read their inputs from inside it, so the example
/// configuration's relative paths resolve to real files.
package struct FuzzFixture: Sendable {
    package let directory: String
    package let router: Router
    package let authenticator: Authenticator
    /// The CoAP and HTTP body limit the request targets use: small, so
    /// block-wise bodies reach it.
    package let maxBody = 2048

    /// What certificates are judged against: a fixed instant keeps every
    /// run alike (the generated certificates are valid 2020 to 2100).
    package static let now = Date(timeIntervalSince1970: 1_900_000_000)

    /// Built on first use; a fixture that does not load is a bug in this file.
    package static let shared: FuzzFixture = {
        do {
            return try FuzzFixture()
        } catch {
            fatalError("fuzz fixture: \(error)")
        }
    }()

    /// Credentials of the registry's devices, for the request targets.
    package static let lampKey: [UInt8] = Array("lamp-1 secret psk".utf8)
    package static let kitchenToken = "kitchen-1-token"
    package static let meterToken = "meter-2-token"

    private init() throws {
        let base = FileManager.default.temporaryDirectory.path
        directory = "\(base)/iotgw-fuzz-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        for sub in ["certs", "devices", "mappings"] {
            try FileManager.default.createDirectory(atPath: "\(directory)/\(sub)", withIntermediateDirectories: true)
        }
        FuzzFixture.removeAtExit = directory
        atexit { FuzzFixture.removeAtExit.map { _ = try? FileManager.default.removeItem(atPath: $0) } }

        let directory = self.directory
        func put(_ name: String, _ text: String, mode: Int = 0o644) throws -> String {
            try Self.write(Array(text.utf8), at: "\(directory)/\(name)", mode: mode)
        }
        let (certificate, key) = try Self.selfSigned()
        for name in ["AmazonRootCA1.pem", "gw-01.cert.pem", "device-ca.pem", "gw-01.devices.cert.pem"] {
            _ = try put("certs/\(name)", certificate)
        }
        for name in ["gw-01.private.key", "gw-01.devices.key"] {
            _ = try put("certs/\(name)", key, mode: 0o600)
        }
        _ = try put("devices/devices.yaml", Self.registry, mode: 0o600)
        _ = try put("mappings/routes.yaml", Self.mappings)
        let path = try put("gateway.yaml", Self.configuration)

        let config = try ConfigLoader.load(path: path, environment: [:], now: Self.now)
        router = Router(rules: config.mappings, gatewayName: config.gateway.name, limits: config.upstream.limits)
        authenticator = Authenticator(registry: config.registry)
    }

    /// Writes `bytes` at `name` inside the fixture; returns its path.
    package func write(_ name: String, _ bytes: some Collection<UInt8>, mode: Int = 0o644) throws -> String {
        try Self.write(bytes, at: "\(directory)/\(name)", mode: mode)
    }

    private static func write(_ bytes: some Collection<UInt8>, at path: String, mode: Int) throws -> String {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    /// Set once, before any input runs; read by the exit handler only.
    nonisolated(unsafe) private static var removeAtExit: String?

    /// One P-256 key and a self-signed CA certificate for it, serving as
    /// every CA, certificate and key the configuration names (the loader
    /// parses them all and checks that each key matches its certificate).
    private static func selfSigned() throws -> (certificate: String, key: String) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("iotgw-fuzz") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: Date(timeIntervalSince1970: 1_577_836_800),
            notValidAfter: Date(timeIntervalSince1970: 4_102_444_800),
            issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
            },
            issuerPrivateKey: .init(key)
        )
        return (try certificate.serializeAsPEM().pemString + "\n", key.pemRepresentation + "\n")
    }

    /// The example configuration's shape, with only what the fixture holds.
    static let configuration = """
        gateway:
          name: gw-01
          state_dir: state
        upstream:
          host: a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com
          tls:
            ca_file: certs/AmazonRootCA1.pem
            cert_file: certs/gw-01.cert.pem
            key_file: certs/gw-01.private.key
        devices:
          files: ["devices/*.yaml"]
        coap:
          listen: ["127.0.0.1:5683"]
          dtls:
            listen: ["127.0.0.1:5684"]
        http:
          listen: ["127.0.0.1:8080"]
          tls:
            listen: ["127.0.0.1:8443"]
            cert_file: certs/gw-01.devices.cert.pem
            key_file: certs/gw-01.devices.key
        mapping_files: ["mappings/*.yaml"]

        """

    /// Three devices: a lamp with a PSK (CoAP over DTLS), a kitchen sensor
    /// and a meter with tokens (HTTPS), the meter in group `meters`.
    static let registry = """
        devices:
          - id: lamp-1
            psk: \(Hex.encode(lampKey))
          - id: kitchen-1
            token_sha256: \(Secrets.tokenHash(kitchenToken).hex)
          - id: meter-2
            groups: [meters]
            token_sha256: \(Secrets.tokenHash(meterToken).hex)
          - id: old-3
            disabled: true
            token_sha256: \(Secrets.tokenHash("old-3-token").hex)

        """

    /// Every kind of mapping the examples in mappings/ use: path variables,
    /// a `{name*}` tail, identity and group checks, anonymous access,
    /// envelopes, a shadow and a command mailbox; and under /formats one
    /// mapping per body format, for the `senml` target.
    static let mappings = """
        mappings:
          - name: sensor-temperature
            resource: /sensors/{device}/temperature
            identity: device
            topic: dt/sensors/{device}/temperature
            qos: 1
          - name: sensor-other
            resource: /sensors/{device}/{metric*}
            identity: device
            topic: dt/sensors/{device}/{metric}
            payload: envelope
          - name: device-heartbeat
            resource: /devices/{device}/heartbeat
            identity: device
            methods: [POST, PUT]
            protocols: [coap]
            topic: dt/status/{gateway}/{device}/heartbeat
            qos: 0
            retain: true
          - name: meter-state
            resource: /meters/{meter}/state
            identity: meter
            allow: [meters]
            methods: [POST, PUT, PATCH]
            protocols: [http]
            topic: dt/meters/{meter}/state
            payload: envelope
          - name: lamp-desired
            resource: /things/{device}/desired
            identity: device
            methods: [GET, PUT]
            protocols: [coap]
            shadow: {thing: "{device}", answer: desired}
          - name: device-commands
            resource: /commands/{device}
            identity: device
            commands:
              topic: "cmd/{device}/#"
          - name: public-weather
            resource: /public/{station}/{reading*}
            auth: anonymous
            methods: [POST, PUT]
            topic: dt/public/{gateway}/{station}/{reading}
            shard_key: "{station}"
            payload: envelope
          - name: formats-senml
            resource: /formats/senml/{device}
            auth: anonymous
            topic: dt/formats/{device}/senml
            payload: senml
          - name: formats-records
            resource: /formats/records/{device}
            auth: anonymous
            topic: dt/formats/{device}/records/{name}
            payload: senml
            batch: true
          - name: formats-json
            resource: /formats/json/{device}
            auth: anonymous
            topic: dt/formats/{device}/json
            payload: json
          - name: formats-batch
            resource: /formats/batch/{device}
            auth: anonymous
            topic: dt/formats/{device}/batch
            batch: true
          - name: formats-envelopes
            resource: /formats/envelopes/{device}
            auth: anonymous
            topic: dt/formats/{device}/envelopes
            payload: envelope
            batch: true

        """
}
