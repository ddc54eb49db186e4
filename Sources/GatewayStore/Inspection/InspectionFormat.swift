/// Short human forms of durations and sizes for the operator commands.
public enum InspectionFormat {
    /// `850ms`, `12.3s`, `3m12s`, `2h05m`, `4d03h`; negative (clock skew, a
    /// message stamped ahead of this machine) gets a leading `-`.
    public static func age(milliseconds: Int64) -> String {
        if milliseconds < 0 { return "-" + age(milliseconds: -milliseconds) }
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        if milliseconds < 60_000 {
            let tenths = milliseconds / 100
            return "\(tenths / 10).\(tenths % 10)s"
        }
        let seconds = milliseconds / 1000
        if seconds < 3600 { return "\(seconds / 60)m\(two(seconds % 60))s" }
        if seconds < 86_400 { return "\(seconds / 3600)h\(two(seconds / 60 % 60))m" }
        return "\(seconds / 86_400)d\(two(seconds / 3600 % 24))h"
    }

    /// `512 B`, `56.7 KiB`, `1.2 MiB`, `3.4 GiB` (binary units, one decimal).
    public static func bytes(_ count: Int) -> String {
        if count < 1024 { return "\(count) B" }
        var scaled = Double(count)
        for unit in ["KiB", "MiB", "GiB", "TiB"] {
            scaled /= 1024
            if scaled < 1024 || unit == "TiB" {
                let tenths = Int((scaled * 10).rounded())
                return "\(tenths / 10).\(tenths % 10) \(unit)"
            }
        }
        return "\(count) B"
    }

    private static func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
