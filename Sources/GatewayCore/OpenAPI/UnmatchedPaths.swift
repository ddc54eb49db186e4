/// Whether a request built from a mapping's path can reach no mapping at
/// all (404), as the router decides it.
extension OpenAPIGenerator {
    /// True when some variable of `rule`'s resource, given a value of
    /// several segments, makes a path no HTTP mapping matches. Empty values
    /// are matched (the router takes an empty segment as a value), so that is
    /// the only way: without it no request for this operation gets 404.
    func valueCanMissEveryMapping(_ rule: MappingRule) -> Bool {
        let routed = mappings.filter { $0.protocols.contains(.http) }
        let longest = routed.map(\.resource.segments.count).max() ?? 0
        // A segment no literal equals (a mapping's literal is never NUL).
        let filler = "\u{0}"
        for (index, segment) in rule.resource.segments.enumerated() {
            guard case .variable = segment else { continue }
            for count in 2...max(2, longest + 1) {
                var path: [String] = []
                for (position, other) in rule.resource.segments.enumerated() {
                    if position == index {
                        path += Array(repeating: filler, count: count)
                    } else if case .literal(let text) = other {
                        path.append(text)
                    } else {
                        path.append(filler)
                    }
                }
                if !routed.contains(where: { $0.resource.match(path) != nil }) { return true }
            }
        }
        return false
    }
}
