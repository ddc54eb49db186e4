import Foundation

/// A tiny LD_PRELOAD library for fault injection, compiled on the spot
/// with the toolchain's clang (or the system's cc).
enum FaultShim {
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
