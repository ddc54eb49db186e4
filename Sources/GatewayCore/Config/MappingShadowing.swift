/// Finds mappings that earlier mappings take requests from. `Router.match`
/// gives a request to the first mapping whose protocols, resource and
/// methods all match, so a later mapping loses every (protocol, method) for
/// which an earlier one's resource takes every path its own resource takes.
/// Losing all of them means it can never match: an error. Losing some is
/// allowed (a catch-all for the other methods may be meant) but warned.
struct MappingShadowing {
    let issues: IssueList

    func check(_ rules: [MappingRule], resourceLocations: [SourceLocation]) {
        for (index, rule) in rules.enumerated() {
            let earlier = rules[..<index]
            var lost: [(proto: IngressProtocol, method: RequestMethod, by: MappingRule)] = []
            for proto in IngressProtocol.allCases where rule.protocols.contains(proto) {
                for method in rule.methods {
                    let winner = earlier.first {
                        $0.protocols.contains(proto) && $0.methods.contains(method) && Self.covers($0.resource, rule.resource)
                    }
                    if let winner { lost.append((proto, method, winner)) }
                }
            }
            guard let first = lost.first else { continue }
            let at = index < resourceLocations.count ? resourceLocations[index] : rule.location
            let reason = Self.reason(first.by.resource, rule.resource)
            let winners = lost.map(\.by.name).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            let named = winners.map { name in
                let winner = lost.first { $0.by.name == name }!.by
                return "'\(name)' (\(winner.location.file):\(winner.location.line))"
            }.joined(separator: ", ")
            if lost.count == rule.protocols.count * rule.methods.count {
                issues.add(
                    "mapping '\(rule.name)' can never match: \(reason) mapping \(named), which comes first and takes the same methods and protocols; move '\(rule.name)' above it, narrow the earlier resource, or remove one",
                    at: at
                )
            } else {
                let pairs = lost.map { "\($0.method.rawValue) over \($0.proto.rawValue)" }.joined(separator: ", ")
                issues.warn(
                    "mapping '\(rule.name)' only gets part of its requests: for \(pairs), \(reason) mapping \(named), which comes first; move '\(rule.name)' above it if it should have them",
                    at: at
                )
            }
        }
    }

    /// Says why the earlier pattern takes the later one's paths.
    static func reason(_ earlier: ResourcePattern, _ later: ResourcePattern) -> String {
        if sameShape(earlier, later) {
            return "its resource \(later.text) is the same pattern as that of"
        }
        if case .rest = earlier.segments.last {
            return "every path of \(later.text) is taken by \(earlier.text) of"
        }
        return "every path of \(later.text) also matches \(earlier.text) of"
    }

    /// Same literals in the same places and variables in the same places
    /// (their names may differ).
    static func sameShape(_ a: ResourcePattern, _ b: ResourcePattern) -> Bool {
        guard a.segments.count == b.segments.count else { return false }
        return zip(a.segments, b.segments).allSatisfy { x, y in
            switch (x, y) {
            case (.literal(let p), .literal(let q)): return p == q
            case (.variable, .variable), (.rest, .rest): return true
            default: return false
            }
        }
    }

    /// Whether every path `later` matches is matched by `earlier`, as
    /// `ResourcePattern.match` decides: a literal takes exactly its text,
    /// `{name}` any one segment, `{name*}` one or more segments to the end.
    static func covers(_ earlier: ResourcePattern, _ later: ResourcePattern) -> Bool {
        let a = earlier.segments, b = later.segments
        for (index, segment) in a.enumerated() {
            // A later path shorter than `earlier` needs: not matched by it.
            guard index < b.count else { return false }
            switch (segment, b[index]) {
            case (.rest, _):
                // `later` has a segment here, so each of its paths has at
                // least index + 1 segments: all taken.
                return true
            case (.literal(let p), .literal(let q)):
                if p != q { return false }
            case (.literal, _):
                return false
            case (.variable, .literal), (.variable, .variable):
                continue
            case (.variable, .rest):
                // `later` also takes longer paths, which `earlier` does not.
                return false
            }
        }
        // No rest in `earlier`: it takes paths of exactly its length only.
        if case .rest = b.last { return false }
        return a.count == b.count
    }
}
