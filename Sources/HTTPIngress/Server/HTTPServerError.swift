/// Why the HTTP ingress could not start.
public typealias HTTPServerError = ListenerStartError<HTTPServer>

extension HTTPServer: NamedListener {
    public static let listensFor = "HTTP"
    public static let listenerName = "HTTP server"
}
