/// The document's servers, from the listen addresses.
struct ServerList {
    /// HTTPS servers, where devices can authenticate.
    var secure: [OpenAPIObject]
    /// Plain HTTP servers: `auth: anonymous` mappings only.
    var plain: [OpenAPIObject]
    var admin: [OpenAPIObject]

    var ingress: [OpenAPIObject] { secure + plain }

    init(http: HTTPSettings, admin: AdminSettings) {
        secure = (http.tls?.listen ?? []).map {
            Self.server("https", $0, "HTTPS: devices authenticate with a bearer token, Basic id:token or a client certificate.")
        }
        plain = http.listen.map {
            Self.server("http", $0, "Plain HTTP: credentials are ignored, so only `auth: anonymous` mappings answer; device mappings answer 401.")
        }
        self.admin = admin.listen.map { Self.server("http", $0, "The admin listener: probes and metrics.") }
    }

    /// A wildcard address names no host a client could use: it becomes a
    /// `host` variable.
    private static func server(_ scheme: String, _ address: ListenAddress, _ description: String) -> OpenAPIObject {
        let wildcard = address.host == "0.0.0.0" || address.host == "::"
        guard wildcard else {
            return ["url": "\(scheme)://\(address)", "description": description]
        }
        return [
            "url": "\(scheme)://{host}:\(address.port)",
            "description": description + " Listening on \(address), every address of the box.",
            "variables": ["host": ["default": "localhost", "description": "The gateway's host name or address."] as OpenAPIObject] as OpenAPIObject,
        ]
    }
}
