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
