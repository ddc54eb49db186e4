import Foundation
internal import CMicroHTTPD
import Logging
import Synchronization

/// Where MHD's own messages go: our logger, and the last line kept to
/// explain a daemon that would not start. Also the C struct MHD's log
/// trampoline reads, at a fixed address for the daemons' lifetime.
///
/// Owner: the `DaemonSet`; MHD gets the struct's address, and the struct an
/// unretained pointer back to this object.
///
/// `@unchecked Sendable`: the C struct is written once in init, then only
/// read by MHD's threads through the pointer; freed in deinit, after the set
/// has stopped every daemon. The rest is `let`s and a `Mutex`.
final class DaemonLogSink: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<iotgw_mhd_logger>
    private let logger: Logger
    private let names: DaemonLogNames
    /// The last line MHD logged, to explain a daemon that would not start.
    let lastMessage = Mutex<String?>(nil)

    init(logger: Logger, names: DaemonLogNames) {
        self.logger = logger
        self.names = names
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: iotgw_mhd_logger(
            fn: logTrampoline, cls: Unmanaged.passUnretained(self).toOpaque()
        ))
    }

    deinit {
        pointer.deallocate()
    }

    func record(_ message: String) {
        let text = message.trimmingCharacters(in: .whitespacesAndNewlines)
        lastMessage.withLock { $0 = text }
        if names.clientFaults.contains(where: { text.hasPrefix($0) }) {
            logger.debug("\(names.clientFault)", metadata: ["\(names.key).log": "\(text)"])
        } else {
            logger.warning("\(names.problem)", metadata: ["\(names.key).log": "\(text)"])
        }
    }
}

/// How a server's daemons name it in log lines.
struct DaemonLogNames: Sendable {
    /// "<subject> listening", "<subject> stopped".
    var subject: String
    /// The metadata prefix: "<key>.listen", "<key>.ports", "<key>.log".
    var key: String
    /// The line for a message from MHD itself.
    var problem: String
    /// Messages MHD logs for one client's failure, not the server's (their
    /// start): logged at debug, since any scanner could fill the journal.
    var clientFaults: [String] = []
    /// The line for those.
    var clientFault = "libmicrohttpd closed a client's connection"
}
