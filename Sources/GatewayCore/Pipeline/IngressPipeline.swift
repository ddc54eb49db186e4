/// What an ingress adapter hands its requests to.
///
/// `accept` routes the request and hands the message to the outbox. It throws
/// at once when the request cannot be accepted (no mapping, unsafe value, outbox
/// full, ...). Otherwise `completion` is called exactly once, on a thread that
/// is not the caller's and possibly before `accept` returns, when the message
/// is committed (success) or could not be stored (failure). Adapters must not
/// block in `completion`: it runs on the outbox's commit thread.
public protocol IngressPipeline: Sendable {
    func accept(
        _ request: IngressRequest,
        completion: @escaping @Sendable (Result<Void, IngressRejection>) -> Void
    ) throws(IngressRejection)
}
