import GatewayCore

/// Assembles the items libcbor's streaming decoder reports into one
/// `StructuredValue`, refusing what no honest body would hold: a nesting
/// deeper than `structuredValueMaxDepth`, or a declared length larger than
/// the bytes left.
final class CBORTreeBuilder {
    enum Frame {
        case array([StructuredValue], remaining: Int?)
        case map([(key: StructuredValue, value: StructuredValue)], key: StructuredValue?, remaining: Int?)
        case tag(UInt64)
        case chunkedBytes([UInt8])
        case chunkedText([UInt8])
    }

    private let total: Int
    /// Where the decoder's current call started, so a declared length can
    /// be checked against the bytes left.
    var offset = 0
    private var stack: [Frame] = []
    private(set) var result: StructuredValue?
    private(set) var error: FormatError?

    init(total: Int) { self.total = total }

    static func from(_ context: UnsafeMutableRawPointer?) -> CBORTreeBuilder {
        Unmanaged<CBORTreeBuilder>.fromOpaque(context!).takeUnretainedValue()
    }

    func fail(_ message: String) {
        if error == nil { error = FormatError(message) }
    }

    func open(_ frame: Frame) {
        guard error == nil else { return }
        guard stack.count < structuredValueMaxDepth else { return fail("CBOR nested deeper than \(structuredValueMaxDepth) levels") }
        if case .chunkedBytes = stack.last { return fail("an indefinite byte string holds only definite byte strings") }
        if case .chunkedText = stack.last { return fail("an indefinite text string holds only definite text strings") }
        stack.append(frame)
    }

    func openArray(count: Int) {
        // Every element takes at least one byte.
        guard count <= total - offset else { return fail("a CBOR array claims \(count) elements in \(total - offset) bytes") }
        if count == 0 { return add(.array([])) }
        open(.array([], remaining: count))
    }

    func openMap(count: Int) {
        guard count <= (total - offset) / 2 else { return fail("a CBOR map claims \(count) pairs in \(total - offset) bytes") }
        if count == 0 { return add(.map([])) }
        open(.map([], key: nil, remaining: count))
    }

    func bytes(_ chunk: [UInt8]) {
        if case .chunkedBytes(let so) = stack.last {
            stack[stack.count - 1] = .chunkedBytes(so + chunk)
            return
        }
        add(.bytes(chunk))
    }

    func text(_ chunk: [UInt8]) {
        if case .chunkedText(let so) = stack.last {
            stack[stack.count - 1] = .chunkedText(so + chunk)
            return
        }
        guard let text = String(validating: chunk, as: UTF8.self) else { return fail("a CBOR text string is not valid UTF-8") }
        add(.string(text))
    }

    func closeIndefinite() {
        guard error == nil, let top = stack.popLast() else { return fail("a CBOR break outside an indefinite item") }
        switch top {
        case .array(let items, nil): add(.array(items))
        case .map(let members, nil, nil): add(.map(members))
        case .chunkedBytes(let bytes): add(.bytes(bytes))
        case .chunkedText(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else { return fail("a CBOR text string is not valid UTF-8") }
            add(.string(text))
        default:
            fail("a CBOR break where none belongs")
        }
    }

    /// A complete item: it fills the innermost open frame, which may
    /// complete in turn.
    func add(_ item: StructuredValue) {
        guard error == nil else { return }
        var item = item
        while true {
            guard let top = stack.popLast() else {
                if result != nil { return fail("more than one CBOR item") }
                result = item
                return
            }
            switch top {
            case .array(var items, let remaining):
                items.append(item)
                if let remaining {
                    if remaining > 1 { stack.append(.array(items, remaining: remaining - 1)); return }
                    item = .array(items)
                } else {
                    stack.append(.array(items, remaining: nil)); return
                }
            case .map(var members, let key, let remaining):
                guard let key else {
                    // A key converts to JSON as the text of its JSON form: a
                    // map or array as key nests that escaping once per level,
                    // doubling the text each time (300 bytes of CBOR took
                    // minutes and gigabytes). Data models keyed by text or
                    // numbers (SenML, JSON) never need them.
                    if Self.isContainer(item) { return fail("a map key is an array or a map; use text or numbers as keys") }
                    stack.append(.map(members, key: item, remaining: remaining)); return
                }
                members.append((key, item))
                if let remaining {
                    if remaining > 1 { stack.append(.map(members, key: nil, remaining: remaining - 1)); return }
                    item = .map(members)
                } else {
                    stack.append(.map(members, key: nil, remaining: nil)); return
                }
            case .tag(let tag):
                item = .tagged(tag, item)
            case .chunkedBytes, .chunkedText:
                return fail("an indefinite string holds only definite strings of its own kind")
            }
        }
    }

    private static func isContainer(_ value: StructuredValue) -> Bool {
        switch value {
        case .array, .map: return true
        case .tagged(_, let inner): return isContainer(inner)
        default: return false
        }
    }
}
