import Foundation

/// A fresh directory under the system temp dir, readable by other users (the
/// broker may run as the `mosquitto` user). Removed by `remove()` unless
/// `IOT_IT_KEEP=1` is set, which keeps everything for a post-mortem.
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ label: String) throws {
        let base = ProcessInfo.processInfo.environment["IOT_IT_TMPDIR"] ?? NSTemporaryDirectory()
        let name = "iotgw-it-\(label)-\(UUID().uuidString.prefix(8).lowercased())"
        path = URL(fileURLWithPath: base).appendingPathComponent(name).path
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
    }

    func file(_ name: String) -> String {
        URL(fileURLWithPath: path).appendingPathComponent(name).path
    }

    /// Creates (if needed) and returns a subdirectory.
    func subdirectory(_ name: String) throws -> String {
        let sub = file(name)
        try FileManager.default.createDirectory(
            atPath: sub, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755]
        )
        return sub
    }

    func write(_ text: String, to name: String) throws -> String {
        let target = file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: target))
        return target
    }

    func write(_ bytes: [UInt8], to name: String) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    static var keep: Bool { ProcessInfo.processInfo.environment["IOT_IT_KEEP"] == "1" }

    func remove() {
        guard !Self.keep else { return }
        try? FileManager.default.removeItem(atPath: path)
    }
}
