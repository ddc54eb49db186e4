import Foundation
import GatewayCore

/// Runs blocking work (SQLite, joins of C library threads, DNS) on a thread of
/// its own so it never occupies one of Swift concurrency's few cooperative
/// threads.
enum Blocking {
    static func run<T: Sendable, E: Error>(_ name: String, _ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            let thread = Thread {
                do throws(E) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            thread.name = name
            thread.start()
        }
        return try result.get()
    }
}
