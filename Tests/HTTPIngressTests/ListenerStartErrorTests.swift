import GatewayCore
import HTTPIngress
import Testing

/// Both servers' start errors are one type; each keeps its own wording.
@Suite("Start errors name their server")
struct ListenerStartErrorTests {
    let address = ListenAddress(host: "localhost", port: 8080)

    @Test func httpServerWording() {
        #expect("\(HTTPServerError.bindFailed(address: address, reason: "Permission denied"))"
            == "cannot listen for HTTP on localhost:8080: Permission denied")
        #expect("\(HTTPServerError.invalidAddress(address))" == "cannot listen for HTTP on localhost:8080: not an IP address")
        #expect("\(HTTPServerError.alreadyStarted)"
            == "the HTTP server was already started (or failed to start); it cannot be started again")
        #expect("\(HTTPServerError.tlsUnsupported)"
            == "cannot serve HTTP over TLS: this libmicrohttpd was built without TLS support")
        #expect("\(HTTPServerError.tlsFileUnreadable(path: "/etc/gw/key.pem", reason: "Permission denied"))"
            == "cannot serve HTTP over TLS: cannot read /etc/gw/key.pem: Permission denied")
        #expect("\(HTTPServerError.tlsCredentialsInvalid(reason: "/etc/gw/ca.pem holds no certificate"))"
            == "cannot serve HTTP over TLS: /etc/gw/ca.pem holds no certificate")
    }

    @Test func adminServerWording() {
        #expect("\(AdminServerError.bindFailed(address: address, reason: "Permission denied"))"
            == "cannot listen for admin requests on localhost:8080: Permission denied")
        #expect("\(AdminServerError.invalidAddress(address))"
            == "cannot listen for admin requests on localhost:8080: not an IP address")
        #expect("\(AdminServerError.alreadyStarted)"
            == "the admin listener was already started (or failed to start); it cannot be started again")
    }
}
