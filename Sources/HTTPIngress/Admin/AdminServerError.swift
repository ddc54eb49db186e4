/// Why the admin listener could not start.
public typealias AdminServerError = ListenerStartError<AdminServer>

extension AdminServer: NamedListener {
    public static let listensFor = "admin requests"
    public static let listenerName = "admin listener"
}
