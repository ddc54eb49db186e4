import Logging

/// Sets up swift-log for `iot-gateway run`.
public enum GatewayLogging {
    /// Every logger made after this writes `LogLine`s to standard error at
    /// `level` or above; in the journal form when stderr is the journal
    /// (looked at once, here: stderr does not change under a running process).
    public static func bootstrap(level: Logger.Level) {
        let journal = JournalStream.isStandardError
        LoggingSystem.bootstrap { label in
            GatewayLogHandler(label: label, level: level, journal: journal)
        }
    }
}
