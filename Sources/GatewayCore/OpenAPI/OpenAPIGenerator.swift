import Yams

/// A JSON-like tree (strings, numbers, booleans, arrays, objects) that Yams
/// dumps as YAML.
typealias OpenAPIObject = [String: Any]

/// Turns the compiled mapping table and the listener settings into the
/// OpenAPI 3.1 description of the HTTP ingress and the admin listener: a
/// pure function of the configuration, so `iot-gateway openapi` can print
/// it and a test can check that the committed copy is current.
///
/// Only what the configuration decides is described: each mapping usable
/// over HTTP with its methods, parameters, bodies, and the statuses the
/// gateway really answers for that kind of mapping (see `OperationStatuses`).
public struct OpenAPIGenerator: Sendable {
    public var mappings: [MappingRule]
    public var http: HTTPSettings
    public var admin: AdminSettings
    public var devices: DeviceSettings
    public var gatewayName: String

    public init(mappings: [MappingRule], http: HTTPSettings, admin: AdminSettings, devices: DeviceSettings, gatewayName: String) {
        self.mappings = mappings
        self.http = http
        self.admin = admin
        self.devices = devices
        self.gatewayName = gatewayName
    }

    public init(config: GatewayConfig) {
        self.init(
            mappings: config.mappings, http: config.http, admin: config.admin,
            devices: config.devices, gatewayName: config.gateway.name
        )
    }

    /// The document as YAML, keys sorted so the same configuration always
    /// gives the same text.
    public func yaml() throws(OpenAPIError) -> String {
        do {
            return try Yams.dump(object: document(), width: -1, allowUnicode: true, sortKeys: true)
        } catch {
            throw OpenAPIError(description: "cannot write the OpenAPI document as YAML: \(error)")
        }
    }

    /// Whether a device can authenticate at all: HTTPS is on and a registry
    /// is configured. Otherwise every `auth: device` mapping answers 401.
    var devicesCanAuthenticate: Bool { http.tls != nil && !devices.files.isEmpty }

    /// The whole document.
    func document() -> OpenAPIObject {
        let servers = ServerList(http: http, admin: admin)
        var paths: OpenAPIObject = [:]
        for item in PathItems.group(mappings.filter { $0.protocols.contains(.http) }) {
            paths[item.template] = pathItem(item, servers: servers)
        }
        for (path, item) in AdminPaths.items(servers: servers.admin) where paths[path] == nil {
            paths[path] = item
        }
        var tags: [OpenAPIObject] = MappingKind.allCases.map { ["name": $0.tag, "description": $0.tagDescription] }
        tags.append(["name": AdminPaths.tag, "description": AdminPaths.tagDescription])
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "iot-gateway \(gatewayName): HTTP ingress and admin API",
                "version": GatewayVersion.string,
                "description": Descriptions.info,
            ] as OpenAPIObject,
            "servers": servers.ingress,
            "tags": tags,
            "paths": paths,
            "components": Components.all(clientCertificates: http.tls?.caFile != nil || devices.caFile != nil),
        ]
    }

    private func pathItem(_ item: PathItems.Item, servers: ServerList) -> OpenAPIObject {
        var object: OpenAPIObject = [
            "summary": "Mapping" + (item.rules.count == 1 ? " " : "s ") + item.rules.map { "`\($0.name)`" }.joined(separator: ", "),
            "description": Descriptions.pathItem(item, maxBody: http.maxBody),
        ]
        let parameters = PathItems.parameters(item.rules[0].resource)
        if !parameters.isEmpty { object["parameters"] = parameters }
        // Device mappings answer only 401 on a plain listener: name the
        // servers where they work, when that is fewer than all.
        let everyRuleAnonymous = item.rules.allSatisfy { $0.auth == .anonymous }
        if !everyRuleAnonymous, !servers.secure.isEmpty, servers.secure.count < servers.ingress.count {
            object["servers"] = servers.secure
        }
        // CoAP's `/.well-known/core` lists these; OpenAPI has no place for
        // them but an extension.
        let links: [OpenAPIObject] = item.rules.compactMap { rule in
            let link = rule.link
            guard rule.protocols.contains(.coap), !(link.resourceTypes.isEmpty && link.interfaces.isEmpty && link.contentFormats.isEmpty) else { return nil }
            return ["mapping": rule.name, "rt": link.resourceTypes, "if": link.interfaces, "ct": link.contentFormats.map(Int.init)]
        }
        if !links.isEmpty { object["x-coap-discovery"] = links }
        for (method, rule) in item.methods {
            let statuses = OperationStatuses(rule: rule, method: method, generator: self)
            object[method.rawValue.lowercased()] = Operations.operation(rule, method: method, statuses: statuses, generator: self)
        }
        return object
    }
}

public struct OpenAPIError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
