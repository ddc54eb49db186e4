import Yams

/// The keys that say what a mapping reads (`payload`, `batch`, `accept`)
/// and how discovery lists it (`rt`, `if`, `ct`).
extension MappingCompiler {
    static let formatKeys = ["batch", "accept", "rt", "if", "ct"]

    struct BodyKeys {
        var payload = PayloadFormat.raw
        var batch = false
        var accept: [String] = []
    }

    /// The media types a payload format can read; nil: any body at all.
    static func readable(_ payload: PayloadFormat, batch: Bool) -> [String]? {
        switch payload {
        case .json:
            return ["application/json", "application/cbor"] + (batch ? [MediaTypes.ndjson] : [])
        case .senml:
            return ["application/senml+json", "application/senml+cbor", "application/json", "application/cbor"]
        case .raw, .envelope:
            return batch ? ["application/json", MediaTypes.ndjson] : nil
        }
    }

    /// What a mapping accepts when it does not say: what it can read
    /// (SenML mappings: the SenML types only; a device sending plain JSON
    /// or CBOR SenML is let in by listing them).
    static func defaultAccept(_ payload: PayloadFormat, batch: Bool) -> [String] {
        if payload == .senml { return ["application/senml+json", "application/senml+cbor"] }
        return readable(payload, batch: batch) ?? []
    }

    func bodyKeys(_ entries: NodeReader.Entries, reader: NodeReader) -> BodyKeys? {
        var keys = BodyKeys()
        var ok = true
        if let value = entries["payload"] {
            if let chosen: PayloadFormat = reader.choice(value, what: "payload") { keys.payload = chosen } else { ok = false }
        }
        if let value = entries["batch"] {
            if let flag = reader.bool(value, what: "batch") { keys.batch = flag } else { ok = false }
        }
        keys.accept = Self.defaultAccept(keys.payload, batch: keys.batch)
        if let value = entries["accept"] {
            guard let list = mediaTypeList(value, what: "accept", reader: reader) else { return nil }
            let readable = Self.readable(keys.payload, batch: keys.batch)
            for (type, item) in list where readable.map({ !$0.contains(type) }) ?? false {
                let what = keys.batch && keys.payload != .senml ? "a batch mapping with payload: \(keys.payload.rawValue)" : "payload: \(keys.payload.rawValue)"
                reader.fail("accept: \(what) cannot read \(type); it reads \(readable!.joined(separator: ", "))", at: item)
                ok = false
            }
            if list.isEmpty {
                reader.fail("accept must list at least one media type (leave it out to accept what the payload format reads)", at: value)
                ok = false
            }
            keys.accept = list.map(\.0)
        }
        return ok ? keys : nil
    }

    /// `rt`, `if` and `ct`; `accept` gives `ct` when it is not written.
    func linkAttributes(_ entries: NodeReader.Entries, accept: [String], shadow: Bool, reader: NodeReader) -> LinkAttributes? {
        var link = LinkAttributes()
        var ok = true
        for (key, what) in [("rt", "rt (resource type)"), ("if", "if (interface)")] {
            guard let value = entries[key], let list = reader.stringList(value, what: what) else { continue }
            for (text, item) in list where text.isEmpty || text.unicodeScalars.contains(where: { $0 == "\"" || $0 == " " || $0 == "\\" || TopicValue.isControl($0) }) {
                reader.fail("\(what) '\(Router.shorten(text))' must be a non-empty token without spaces, quotes or backslashes", at: item)
                ok = false
            }
            if key == "rt" { link.resourceTypes = list.map(\.0) } else { link.interfaces = list.map(\.0) }
        }
        if let value = entries["ct"] {
            guard let list = mediaTypeList(value, what: "ct", reader: reader) else { return nil }
            for (type, item) in list {
                if let number = ContentFormats.number(forBase: type) ?? Self.contentFormatNumber(type) {
                    link.contentFormats.append(number)
                } else {
                    reader.fail("ct: \(type) has no CoAP Content-Format number; write the number", at: item)
                    ok = false
                }
            }
        } else if shadow {
            link.contentFormats = [50]
        } else {
            link.contentFormats = accept.compactMap(ContentFormats.number(forBase:))
        }
        return ok ? link : nil
    }

    /// Media types as written (`application/cbor`) or as CoAP Content-Format
    /// numbers (`60`), as lowercase bases.
    private func mediaTypeList(_ node: Node, what: String, reader: NodeReader) -> [(String, Node)]? {
        guard let list = reader.stringList(node, what: what) else { return nil }
        var types: [(String, Node)] = []
        var ok = true
        for (text, item) in list {
            if let number = UInt32(text) {
                types.append((ContentFormats.mediaTypes[number].map(ContentFormats.base(of:)) ?? "coap-content-format/\(number)", item))
                continue
            }
            let base = ContentFormats.base(of: text)
            let parts = base.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && !$0.contains(" ") }) else {
                reader.fail("\(what): '\(Router.shorten(text))' is neither a media type (type/subtype) nor a Content-Format number", at: item)
                ok = false
                continue
            }
            if !types.contains(where: { $0.0 == base }) { types.append((base, item)) }
        }
        return ok ? types : nil
    }

    /// `coap-content-format/N`, what a number the registry lacks is called.
    static func contentFormatNumber(_ type: String) -> UInt32? {
        guard type.hasPrefix("coap-content-format/") else { return nil }
        return UInt32(type.dropFirst("coap-content-format/".count))
    }
}

/// Media types the gateway reads that CoAP has no Content-Format for.
public enum MediaTypes {
    /// Newline-delimited JSON, for HTTP batches.
    public static let ndjson = "application/x-ndjson"
}
