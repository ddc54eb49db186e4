#if canImport(Glibc)
import Glibc
#endif

/// A mutex with a condition variable whose timed waits run on
/// CLOCK_MONOTONIC. `NSCondition.wait(until:)` takes a `Date`, so a wall
/// clock stepped back by NTP would stretch every timed wait by the step.
///
/// `@unchecked Sendable`: the pthread objects are made for use from several
/// threads; they live at fixed addresses (allocated here, never moved) as
/// pthreads requires, and are destroyed only in `deinit`.
final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func broadcast() { pthread_cond_broadcast(condition) }
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits (locked) until woken or `deadline`; false when the deadline passed.
    func wait(until deadline: Deadline) -> Bool {
        let whole = deadline.seconds.rounded(.down)
        var time = timespec(tv_sec: Int(whole), tv_nsec: Int((deadline.seconds - whole) * 1e9))
        return pthread_cond_timedwait(condition, mutex, &time) != ETIMEDOUT
    }
}
