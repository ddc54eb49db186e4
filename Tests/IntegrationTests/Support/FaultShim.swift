import Foundation

/// A tiny LD_PRELOAD library for fault injection, compiled on the spot
/// with the toolchain's clang (or the system's cc).
enum FaultShim {
    /// The environment variable naming the trigger file.
    static let triggerVariable = "IOTGW_FAULT_TRIGGER"

    /// What a shimmed `pwrite` does while the trigger file exists.
    enum WriteFault {
        /// Fails with EIO: a disk that returns errors.
        case fail
        /// Blocks until the file is gone: a disk that stops answering.
        case hang
    }

    /// A shim around `pwrite`/`pwrite64` (SQLite's writes) that injects
    /// `fault` while the file named by `$IOTGW_FAULT_TRIGGER` exists.
    static func pwrite(_ fault: WriteFault) -> String {
        let armed = fault == .fail ? "if (armed()) { errno = EIO; return -1; }" : "while (armed()) usleep(20000);"
        let wrapper = { (name: String) in
            """
            ssize_t \(name)(int fd, const void *buffer, size_t count, off_t offset) {
                static ssize_t (*real)(int, const void *, size_t, off_t);
                if (real == NULL) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "\(name)");
                \(armed)
                return real(fd, buffer, count, offset);
            }

            """
        }
        return """
            #define _GNU_SOURCE
            #include <dlfcn.h>
            #include <errno.h>
            #include <stdlib.h>
            #include <sys/types.h>
            #include <unistd.h>

            static int armed(void) {
                const char *trigger = getenv("\(triggerVariable)");
                return trigger != NULL && access(trigger, F_OK) == 0;
            }

            """ + wrapper("pwrite64") + wrapper("pwrite")
    }

    static var compiler: String? { Tools.find("clang") ?? Tools.find("cc") }

    /// Compiles `source` into `name.so` in `directory`; returns its path.
    static func build(_ source: String, named name: String, in directory: TemporaryDirectory) async throws -> String {
        guard let compiler else { throw HarnessError("no C compiler (clang/cc) to build the fault shim") }
        let sourcePath = try directory.write(source, to: name + ".c")
        let library = directory.file(name + ".so")
        let build = try await ProcessRunner.run(compiler, ["-shared", "-fPIC", "-O1", "-o", library, sourcePath, "-ldl"],
                                                timeout: .seconds(60))
        guard build.succeeded else { throw HarnessError("cannot build the fault shim\n\(build.summary)") }
        return library
    }
}
