import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts a thread whose name the kernel knows too, so `top -H`, `ps -L`
/// and profilers show "coap" or "outbox-writer" rather than a runtime's
/// default. (Foundation's `Thread.name` is not passed on to the kernel here.)
public enum NamedThread {
    public static func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            #if canImport(Glibc)
            // pthread_setname_np is not visible to Swift here; this is what it
            // does on Linux. The kernel keeps at most 15 bytes.
            if let file = fopen("/proc/thread-self/comm", "w") {
                fputs(String(decoding: name.utf8.prefix(15), as: UTF8.self), file)
                fclose(file)
            }
            #endif
            body()
        }
        thread.name = name
        thread.start()
    }
}
