#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import CMicroHTTPD

/// The text of one PEM file, NUL-terminated at a fixed address, as
/// libmicrohttpd's `MHD_OPTION_HTTPS_MEM_*` options take it.
///
/// `@unchecked Sendable`: the buffer is filled once in `load` and only read
/// afterwards (by GnuTLS and MHD); it is zeroed and freed in deinit, which
/// comes after every daemon that points at it has stopped (see
/// `TLSMaterial`). Zeroed because one of these holds the private key.
final class PEMText: @unchecked Sendable {
    /// PEM files are a few kilobytes; anything larger is not one.
    static let maxSize = 1 << 20

    let pointer: UnsafeMutablePointer<CChar>
    /// Allocated bytes, the terminating NUL included.
    private let capacity: Int

    private init(capacity: Int) {
        self.capacity = capacity
        pointer = .allocate(capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
    }

    deinit {
        explicit_bzero(pointer, capacity)
        pointer.deallocate()
    }

    /// The file's text, or the system's reason why it cannot be read. Read
    /// straight into the buffer, so the key leaves no copies behind.
    static func load(_ path: String) -> Result<PEMText, ReadFailure> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(ReadFailure(errno: errno)) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .failure(ReadFailure(errno: errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return .failure(ReadFailure(reason: "not a regular file")) }
        guard info.st_size <= maxSize else { return .failure(ReadFailure(reason: "larger than \(maxSize) bytes")) }
        let size = Int(info.st_size)
        let text = PEMText(capacity: size + 1)
        var filled = 0
        while filled < size {
            let count = read(descriptor, text.pointer + filled, size - filled)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return .failure(ReadFailure(errno: errno)) }
            if count == 0 { break }  // the file shrank: keep what is there
            filled += count
        }
        return .success(text)
    }

    /// The text as GnuTLS takes it, up to the first NUL (as MHD, which uses
    /// `strlen`, sees it too).
    var datum: gnutls_datum_t {
        gnutls_datum_t(
            data: UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
            size: UInt32(clamping: strlen(pointer))
        )
    }

    struct ReadFailure: Error {
        var reason: String

        init(reason: String) {
            self.reason = reason
        }

        init(errno code: Int32) {
            reason = String(cString: strerror(code))
        }
    }
}
