/// The admin listener (`admin.listen`): probes and metrics, GET and HEAD
/// only, answered by AdminRoutes (GatewayRuntime) and AdminHandler
/// (HTTPIngress).
enum AdminPaths {
    static let tag = "admin"
    static let tagDescription = "The admin listener (`admin.listen`, plain HTTP): probes and Prometheus metrics. GET and HEAD only (other methods: 405 with `Allow: GET, HEAD`); any other path is 404."

    static func items(servers: [OpenAPIObject]) -> [(String, OpenAPIObject)] {
        let text: OpenAPIObject = ["text/plain": ["schema": ["type": "string"]] as OpenAPIObject]
        func item(_ id: String, _ summary: String, _ responses: OpenAPIObject) -> OpenAPIObject {
            var object: OpenAPIObject = [
                "get": [
                    "operationId": "admin.\(id)", "tags": [tag], "summary": summary,
                    "security": [[String: [String]]()],
                    "responses": responses,
                ] as OpenAPIObject,
            ]
            if !servers.isEmpty { object["servers"] = servers }
            return object
        }
        return [
            ("/healthz", item("healthz", "Liveness: 200 while the process runs", [
                "200": ["description": "The process runs (`ok`).", "content": text] as OpenAPIObject,
            ])),
            ("/readyz", item("readyz", "Readiness: the ingress listeners are open and the outbox takes writes", [
                "200": ["description": "Ready; the body also shows the upstream state, which readiness does not require.", "content": text] as OpenAPIObject,
                "503": ["description": "Not ready: the gateway is starting or stopping (its listeners are not open), or the outbox does not take writes (its last write failed, e.g. its disk is full). The body says which.", "content": text] as OpenAPIObject,
            ])),
            ("/metrics", item("metrics", "Prometheus metrics, text exposition format 0.0.4", [
                "200": ["description": "The metrics (see docs/operations.md).", "content": ["text/plain": ["schema": ["type": "string"]] as OpenAPIObject] as OpenAPIObject] as OpenAPIObject,
            ])),
        ]
    }
}
