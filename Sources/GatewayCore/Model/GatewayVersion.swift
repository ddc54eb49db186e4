internal import CBuildInfo

/// The gateway's version, printed by `iot-gateway --version`, logged at start
/// and exported as the build_info metric.
public enum GatewayVersion {
    public static let string = "0.12.0"
    /// The commit the binary was built from (short hash, "-dirty" when the
    /// tree had uncommitted changes). packaging/build-deb passes it in through
    /// IOTGW_COMMIT; any other build says "unknown" rather than guess.
    // The C string is a literal with static storage: copying it once is safe.
    public static let commit = String(cString: iotgw_build_commit())
    /// What `--version` prints: `0.12.0 (commit 0130b5d)`.
    public static let description = "\(string) (commit \(commit))"
}
