import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The gateway's swift-log handler: one `LogLine` per entry on standard
/// error, with the journal's priority prefix when stderr is the journal.
public struct GatewayLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    /// The journal form: `<N>` prefix, no timestamp.
    private let journal: Bool
    private let output: LogOutput

    public init(
        label: String, level: Logger.Level, journal: Bool,
        output: LogOutput = .standardError, metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.label = label
        self.logLevel = level
        self.journal = journal
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { $1 }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { $1 }
        }
        if let error = event.error {
            merged["error.message"] = "\(error)"
        }
        output.write(LogLine.format(
            level: event.level, label: label, message: event.message.description, metadata: merged,
            timestamp: journal ? nil : LogTimestamp.now()
        ))
    }

    @available(*, deprecated, renamed: "log(event:)")
    public func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?,
        source: String, file: String, function: String, line: UInt
    ) {
        log(event: LogEvent(
            level: level, message: message, metadata: metadata, source: source, file: file, function: function, line: line
        ))
    }
}

/// Where log lines go: a file descriptor (stderr), or, in tests, memory.
public final class LogOutput: Sendable {
    private enum Target {
        case descriptor(Int32)
        case memory([String])
    }

    /// Keeps lines whole: a write(2) may take only part of a line (a full
    /// pipe, a signal), and the rest must follow before another line starts.
    private let target: Mutex<Target>

    private init(_ target: Target) {
        self.target = Mutex(target)
    }

    public static let standardError = LogOutput(.descriptor(STDERR_FILENO))

    /// Keeps the lines in memory (`lines`), for tests.
    public static func memory() -> LogOutput { LogOutput(.memory([])) }

    public var lines: [String] {
        target.withLock { target in
            if case .memory(let lines) = target { return lines }
            return []
        }
    }

    func write(_ line: String) {
        target.withLock { target in
            switch target {
            case .descriptor(let descriptor):
                var bytes = Array(line.utf8)
                bytes.withUnsafeMutableBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                        if written > 0 {
                            offset += written
                        } else if written < 0 && errno == EINTR {
                            continue
                        } else {
                            // Nowhere left to say it (stderr closed or full disk): drop the line.
                            break
                        }
                    }
                }
            case .memory(var lines):
                lines.append(line)
                target = .memory(lines)
            }
        }
    }
}

/// UTC with milliseconds, `2026-12-03T06:10:40.123Z`: sorts as text and
/// reads the same on every box whatever its time zone.
enum LogTimestamp {
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return format(seconds: Int(spec.tv_sec), milliseconds: Int(spec.tv_nsec) / 1_000_000)
    }

    static func format(seconds: Int, milliseconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return pad(parts.tm_year + 1900, 4) + "-" + pad(parts.tm_mon + 1, 2) + "-" + pad(parts.tm_mday, 2)
            + "T" + pad(parts.tm_hour, 2) + ":" + pad(parts.tm_min, 2) + ":" + pad(parts.tm_sec, 2)
            + "." + pad(Int32(milliseconds), 3) + "Z"
    }
}
