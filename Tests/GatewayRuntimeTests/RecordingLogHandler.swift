import Logging
import Synchronization

/// Keeps every log line's message and metadata, so a test can assert what
/// an operator would read.
struct RecordingLogHandler: LogHandler {
    final class Lines: Sendable {
        private let lines = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])
        func append(_ line: (level: Logger.Level, message: String, metadata: Logger.Metadata)) { lines.withLock { $0.append(line) } }
        var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] { lines.withLock { $0 } }
    }

    let lines: Lines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        lines.append((level, message.description, self.metadata.merging(metadata ?? [:]) { $1 }))
    }

    static func logger() -> (Logger, Lines) {
        let lines = Lines()
        return (Logger(label: "test") { _ in RecordingLogHandler(lines: lines) }, lines)
    }
}
