import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signaled(let signal): return "killed by signal \(signal)"
        }
    }
}

/// The outcome of a short-lived command.
struct ProcessResult: Sendable {
    var commandLine: String
    var status: ExitStatus
    var stdout: Data
    var stderr: Data
    var timedOut: Bool

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    var succeeded: Bool { status == .exited(0) && !timedOut }

    /// Everything about the run, for failure messages.
    var summary: String {
        """
        $ \(commandLine)
        \(timedOut ? "TIMED OUT, " : "")\(status)
        --- stdout ---
        \(tail(stdoutText))
        --- stderr ---
        \(tail(stderrText))
        """
    }
}

/// Runs short-lived commands with a deadline: a child that outlives it is
/// killed, so no test can hang on a tool.
enum ProcessRunner {
    static func run(
        _ program: String,
        _ arguments: [String],
        stdin: Data? = nil,
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> ProcessResult {
        let executable = try Tools.require(program)
        let scratch = NSTemporaryDirectory() + "iotgw-run-\(UUID().uuidString)"
        let outPath = scratch + ".out", errPath = scratch + ".err", inPath = scratch + ".in"
        defer {
            for path in [outPath, errPath, inPath] { try? FileManager.default.removeItem(atPath: path) }
        }
        let child = try ChildProcess(
            executable: executable, arguments: arguments,
            stdoutPath: outPath, stderrPath: errPath,
            stdin: stdin.map { data in
                _ = FileManager.default.createFile(atPath: inPath, contents: data)
                return inPath
            },
            environment: environment
        )
        let status = await child.waitForExit(timeout: timeout)
        var timedOut = false
        let final: ExitStatus
        if let status {
            final = status
        } else {
            timedOut = true
            final = await child.kill()
        }
        return ProcessResult(
            commandLine: ([executable] + arguments).map(shellQuoted).joined(separator: " "),
            status: final,
            stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
            stderr: FileManager.default.contents(atPath: errPath) ?? Data(),
            timedOut: timedOut
        )
    }
}

func shellQuoted(_ word: String) -> String {
    let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) }
    return plain && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// A child process with its output going to files. It is killed when this
/// object goes away and, as a last resort, when the test process exits, so
/// a failing test leaves no broker or gateway behind.
///
/// Spawned with `posix_spawn` rather than Foundation's `Process`: the test
/// runner's threads block most signals, and a child inherits that mask —
/// mosquitto and the gateway would then never see SIGTERM. Here the child
/// starts with an empty signal mask and default dispositions.
final class ChildProcess {
    let pid: pid_t
    let executable: String
    let stdoutPath: String
    let stderrPath: String
    private var reaped: ExitStatus?

    init(
        executable: String,
        arguments: [String],
        stdoutPath: String,
        stderrPath: String,
        stdin: String? = nil,
        environment: [String: String]? = nil
    ) throws {
        self.executable = executable
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let environmentPairs = ProcessInfo.processInfo.environment
            .merging(environment ?? [:]) { $1 }
            .map { "\($0.key)=\($0.value)" }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environmentPairs.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw HarnessError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        ChildRegistry.add(pid)
    }

    deinit {
        if reap() == nil {
            Glibc.kill(pid, SIGKILL)
            // Bounded: a SIGKILLed child is reaped at once.
            for _ in 0..<500 where reap() == nil { usleep(10_000) }
        }
        ChildRegistry.remove(pid)
    }

    /// Collects the exit status if the child has exited (never blocks).
    @discardableResult
    private func reap() -> ExitStatus? {
        if let reaped { return reaped }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            let signal = status & 0x7F
            reaped = signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
            ChildRegistry.remove(pid)
        } else if result < 0 && errno == ECHILD {
            reaped = .exited(-1)
        }
        return reaped
    }

    var isRunning: Bool { reap() == nil }

    var exitStatus: ExitStatus? { reap() }

    func signal(_ signal: Int32) {
        if reap() == nil { Glibc.kill(pid, signal) }
    }

    /// Waits up to `timeout` for the child to exit; nil if it is still running.
    func waitForExit(timeout: Duration) async -> ExitStatus? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            if let status = reap() { return status }
            if clock.now >= deadline { return nil }
            do {
                try await Task.sleep(for: .milliseconds(10))
            } catch {
                // Cancelled: Task.sleep returns at once from now on; still
                // wait (bounded by the deadline) without spinning a core.
                usleep(10_000)
            }
        }
    }

    /// SIGTERM, then SIGKILL if the child is still there after `grace`.
    /// Returns how it ended and whether the SIGKILL was needed.
    func terminate(grace: Duration = .seconds(10)) async -> (status: ExitStatus, forced: Bool) {
        if let status = reap() { return (status, false) }
        signal(SIGTERM)
        if let status = await waitForExit(timeout: grace) { return (status, false) }
        return (await kill(), true)
    }

    /// SIGKILL and wait.
    @discardableResult
    func kill() async -> ExitStatus {
        signal(SIGKILL)
        return await waitForExit(timeout: .seconds(10)) ?? .signaled(SIGKILL)
    }

    var stdoutText: String { readText(stdoutPath) }
    var stderrText: String { readText(stderrPath) }
}

/// Every child still running; killed by an `atexit` handler so nothing
/// outlives the test process even if a test crashed past its cleanup. Also
/// removes directories that live for the whole run (the shared PKI).
enum ChildRegistry {
    private static let pids = Mutex<Set<pid_t>>([])
    private static let directories = Mutex<[String]>([])
    private static let installed = Mutex<Bool>(false)

    private static func installHandler() {
        let install = installed.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if install {
            atexit {
                ChildRegistry.killAll()
                if !TemporaryDirectory.keep {
                    for path in ChildRegistry.directories.withLock({ $0 }) {
                        try? FileManager.default.removeItem(atPath: path)
                    }
                }
            }
        }
    }

    static func add(_ pid: pid_t) {
        installHandler()
        pids.withLock { _ = $0.insert(pid) }
    }

    static func removeAtExit(_ directory: String) {
        installHandler()
        directories.withLock { $0.append(directory) }
    }

    static func remove(_ pid: pid_t) {
        pids.withLock { _ = $0.remove(pid) }
    }

    static func killAll() {
        let all = pids.withLock { set -> Set<pid_t> in
            defer { set.removeAll() }
            return set
        }
        for pid in all { Glibc.kill(pid, SIGKILL) }
    }
}
