import Foundation

/// A child process's stdout or stderr, in a temporary file rather than a
/// pipe: the tests start processes in parallel, and a process another test
/// spawns at the same moment inherits the pipe's write end, so a reader
/// waiting for EOF would wait for as long as that process lives (a broker:
/// the whole run). Read it after the child exited.
public final class CapturedOutput {
    public let path = NSTemporaryDirectory() + "iotgw-capture-\(UUID().uuidString)"
    public let handle: FileHandle

    public init() throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteUnknown)
        }
        self.handle = handle
    }

    deinit {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: path)
    }

    public var data: Data { FileManager.default.contents(atPath: path) ?? Data() }
}
