/// The gateway's version, printed by `iot-gateway --version`.
public enum GatewayVersion {
    public static let string = "0.1.0"
    /// The commit the binary was built from; "unknown" until the build passes it in.
    public static let commit = "unknown"
}
