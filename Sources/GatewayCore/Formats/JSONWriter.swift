/// A minimal streaming JSON writer: the envelope's and SenML records'
/// shapes are fixed, so this is cheaper than building a dictionary and
/// serialising it.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// One entry per open object or array: whether its next member is the first.
    private var firstMember: [Bool] = []

    init() { bytes.reserveCapacity(256) }

    mutating func beginObject() {
        bytes.append(UInt8(ascii: "{"))
        firstMember.append(true)
    }

    mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        firstMember.removeLast()
    }

    mutating func beginArray() {
        bytes.append(UInt8(ascii: "["))
        firstMember.append(true)
    }

    mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        firstMember.removeLast()
    }

    /// Starts an array element; the value written next is it.
    mutating func element() {
        if firstMember[firstMember.count - 1] {
            firstMember[firstMember.count - 1] = false
        } else {
            bytes.append(UInt8(ascii: ","))
        }
    }

    /// Starts a member; the value written next belongs to it.
    mutating func key(_ name: String) {
        if firstMember[firstMember.count - 1] {
            firstMember[firstMember.count - 1] = false
        } else {
            bytes.append(UInt8(ascii: ","))
        }
        appendQuoted(name)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func string(_ value: String) {
        appendQuoted(value)
    }

    mutating func null() {
        bytes.append(contentsOf: Array("null".utf8))
    }

    /// Appends bytes already known to be one valid JSON value.
    mutating func raw(_ json: [UInt8]) {
        bytes.append(contentsOf: json)
    }

    mutating func appendQuoted(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case "\\": bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case "\n": bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case "\r": bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case "\t": bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\u{2028}" || scalar == "\u{2029}" {
                    let hex = String(scalar.value, radix: 16)
                    bytes.append(contentsOf: Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8))
                } else {
                    bytes.append(contentsOf: Array(String(scalar).utf8))
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
