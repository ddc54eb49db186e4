/// The gateway's version, printed by `iot-gateway --version`.
public enum GatewayVersion {
    public static let string = "0.1.0"
}
