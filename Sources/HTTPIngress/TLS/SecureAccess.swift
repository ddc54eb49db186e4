internal import CMicroHTTPD
import GatewayCore

/// The TLS daemons' access handler: the server's one `RequestHandler`, told
/// that the request came over TLS (so it reads the request's credentials).
struct SecureAccess: AccessHandler {
    let handler: RequestHandler

    func handle(_ call: AccessCall) -> MHD_Result {
        handler.handle(call, transport: .secure)
    }
}
