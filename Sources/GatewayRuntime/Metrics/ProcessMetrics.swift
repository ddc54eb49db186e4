import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The process metrics Prometheus' client libraries export under standard
/// names (`process_*`), read from /proc at each scrape: nothing is kept or
/// updated between scrapes.
///
/// They are written as text rather than through the registry because
/// `process_cpu_seconds_total` is a counter of fractional seconds, which
/// swift-prometheus' integer counters cannot hold.
struct ProcessMetrics: Equatable {
    var cpuSeconds: Double
    var residentBytes: Int
    var openFDs: Int
    var maxFDs: Int
    var startTimeSeconds: Double

    /// This process now; nil where /proc cannot be read (not Linux).
    static func sample() -> ProcessMetrics? {
        guard let stat = read("/proc/self/stat"), let statm = read("/proc/self/statm"),
              let system = read("/proc/stat") else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = sysconf(Int32(_SC_PAGESIZE))
        guard ticks > 0, page > 0,
              let parsed = parse(stat: stat, statm: statm, system: system, ticksPerSecond: ticks, pageSize: page)
        else { return nil }
        var metrics = parsed
        metrics.openFDs = openDescriptors()
        var limit = rlimit()
        metrics.maxFDs = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : -1
        return metrics
    }

    /// CPU time, start time and resident memory from the texts of
    /// /proc/self/stat, /proc/self/statm and /proc/stat (for `btime`, the
    /// boot time the start time counts from). The descriptor figures are
    /// left at 0.
    static func parse(stat: String, statm: String, system: String, ticksPerSecond: Double, pageSize: Int) -> ProcessMetrics? {
        // The command name (2nd field) may hold spaces and parentheses:
        // the fields that follow start after its last ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state): utime is field 14, stime 15, starttime 22.
        guard fields.count > 19, let user = Double(fields[11]), let system_ = Double(fields[12]),
              let started = Double(fields[19]) else { return nil }
        let pages = statm.split(separator: " ")
        guard pages.count > 1, let resident = Int(pages[1]) else { return nil }
        guard let bootLine = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(bootLine.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces)) else { return nil }
        return ProcessMetrics(
            cpuSeconds: (user + system_) / ticksPerSecond,
            residentBytes: resident * pageSize,
            openFDs: 0,
            maxFDs: 0,
            startTimeSeconds: boot + started / ticksPerSecond
        )
    }

    /// The families in the text format, each with its HELP and TYPE.
    var text: String {
        func family(_ name: String, _ type: String, _ help: String, _ value: String) -> String {
            "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        return family("process_cpu_seconds_total", "counter", "User and system CPU time this process has used, in seconds.", Self.number(cpuSeconds))
            + family("process_resident_memory_bytes", "gauge", "Resident set size of this process, in bytes.", String(residentBytes))
            + family("process_open_fds", "gauge", "File descriptors this process has open.", String(openFDs))
            + family("process_max_fds", "gauge", "The most file descriptors this process may open (its soft RLIMIT_NOFILE).", String(maxFDs))
            + family("process_start_time_seconds", "gauge", "When this process started, in seconds since 1970 (UTC).", Self.number(startTimeSeconds))
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    private static func read(_ path: String) -> String? {
        // /proc files report a size of 0: read until the end rather than by size.
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Entries of /proc/self/fd, without the one this listing opens.
    private static func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(directory) }
        let own = dirfd(directory)
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let descriptor = Int32(name), descriptor != own else { continue }
            count += 1
        }
        return count
    }
}
