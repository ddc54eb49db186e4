/// `/.well-known/core` (RFC 6690): the CoAP resources the asking device may
/// use, in CoRE Link Format, built from the mapping table.
///
/// A path variable stays a URI template (`</sensors/{device}/temperature>`),
/// except the mapping's `identity` variable, which an authenticated device
/// sees filled with its own id: that is the one value it may use.
public enum Discovery {
    /// One `?name=value` query filter (RFC 6690 §4.1); a value ending in
    /// `*` matches by prefix.
    public struct Filter: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }

        /// `name=value` as a Uri-Query option carries it; nil without `=`.
        public init?(query: String) {
            guard let equals = query.firstIndex(of: "=") else { return nil }
            name = String(query[..<equals])
            value = String(query[query.index(after: equals)...])
        }
    }

    public struct Link: Sendable, Equatable {
        public var target: String
        public var attributes: LinkAttributes
        public var observable: Bool
    }

    /// The links `device` (nil: an anonymous client) may use, in table order,
    /// each mapping once (the first of several with the same resource).
    public static func links(rules: [MappingRule], device: Device?) -> [Link] {
        var links: [Link] = []
        var seen: Set<String> = []
        for rule in rules where rule.protocols.contains(.coap) && usable(rule, by: device) {
            let target = self.target(rule, device: device)
            guard seen.insert(target).inserted else { continue }
            let observable = rule.methods.contains(.get) && (rule.shadow != nil || rule.commands != nil)
            links.append(Link(target: target, attributes: rule.link, observable: observable))
        }
        return links
    }

    /// Whether `device` may use the mapping, as the router would decide it
    /// (identity aside: the target is filled with the device's own id).
    static func usable(_ rule: MappingRule, by device: Device?) -> Bool {
        if rule.auth == .anonymous { return true }
        guard let device, !device.disabled else { return false }
        return rule.allow.isEmpty || device.isAllowed(by: rule.allow)
    }

    static func target(_ rule: MappingRule, device: Device?) -> String {
        var path = ""
        for segment in rule.resource.segments {
            path += "/"
            switch segment {
            case .literal(let text): path += percentEncoded(text)
            case .variable(let name) where name == rule.identity && device != nil: path += percentEncoded(device!.id)
            case .variable(let name): path += "{\(name)}"
            case .rest(let name): path += "{+\(name)}"
            }
        }
        return path.isEmpty ? "/" : path
    }

    /// The document, filtered; empty when nothing matches.
    public static func document(_ links: [Link], filters: [Filter]) -> String {
        links.filter { link in filters.allSatisfy { matches(link, $0) } }.map(render).joined(separator: ",")
    }

    static func render(_ link: Link) -> String {
        var text = "<\(link.target)>"
        let attributes = link.attributes
        if !attributes.resourceTypes.isEmpty { text += ";rt=\"\(attributes.resourceTypes.joined(separator: " "))\"" }
        if !attributes.interfaces.isEmpty { text += ";if=\"\(attributes.interfaces.joined(separator: " "))\"" }
        switch attributes.contentFormats.count {
        case 0: break
        case 1: text += ";ct=\(attributes.contentFormats[0])"
        default: text += ";ct=\"\(attributes.contentFormats.map(String.init).joined(separator: " "))\""
        }
        if link.observable { text += ";obs" }
        return text
    }

    static func matches(_ link: Link, _ filter: Filter) -> Bool {
        let values: [String]
        switch filter.name {
        case "href": values = [link.target]
        case "rt": values = link.attributes.resourceTypes
        case "if": values = link.attributes.interfaces
        case "ct": values = link.attributes.contentFormats.map(String.init)
        case "obs": return link.observable
        default: return false
        }
        if filter.value.hasSuffix("*") {
            let prefix = filter.value.dropLast()
            return values.contains { $0.hasPrefix(prefix) }
        }
        return values.contains(filter.value)
    }

    /// RFC 3986 path characters pass; everything else is percent-encoded.
    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if byte < 0x80, scalar.properties.isASCIIHexDigit || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
                || "-._~!$&'()*+,;=:@".unicodeScalars.contains(scalar) {
                result.unicodeScalars.append(scalar)
            } else {
                result += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return result
    }
}
