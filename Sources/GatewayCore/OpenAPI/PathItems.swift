/// The OpenAPI paths of a mapping table: one path item per resource shape,
/// each method going to the first mapping that takes it, as the router does.
enum PathItems {
    struct Item {
        /// `/sensors/{device}/temperature`; a final `{metric*}` is written `{metric}`.
        var template: String
        /// The mappings with this shape, in table order.
        var rules: [MappingRule]
        /// Each method the path answers, with the mapping that answers it.
        var methods: [(RequestMethod, MappingRule)]
    }

    /// `rules` are the mappings usable over HTTP, in table order.
    static func group(_ rules: [MappingRule]) -> [Item] {
        var items: [Item] = []
        var index: [String: Int] = [:]
        for rule in rules {
            // OpenAPI takes `/a/{x}` and `/a/{y}` for the same path, so
            // items are keyed by the shape with the names left out.
            let key = shape(rule.resource)
            if let at = index[key] {
                items[at].rules.append(rule)
                for method in rule.methods.sorted() where !items[at].methods.contains(where: { $0.0 == method }) {
                    items[at].methods.append((method, rule))
                }
            } else {
                index[key] = items.count
                items.append(Item(template: template(rule.resource), rules: [rule], methods: rule.methods.sorted().map { ($0, rule) }))
            }
        }
        return items
    }

    static func template(_ pattern: ResourcePattern) -> String {
        if pattern.segments.isEmpty { return "/" }
        return pattern.segments.map { segment -> String in
            switch segment {
            case .literal(let text): return "/" + text
            case .variable(let name), .rest(let name): return "/{\(name)}"
            }
        }.joined()
    }

    private static func shape(_ pattern: ResourcePattern) -> String {
        pattern.segments.map { segment -> String in
            switch segment {
            case .literal(let text): return "/=" + text
            case .variable: return "/{}"
            case .rest: return "/{*}"
            }
        }.joined()
    }

    static func parameters(_ pattern: ResourcePattern) -> [OpenAPIObject] {
        pattern.segments.compactMap { segment -> OpenAPIObject? in
            switch segment {
            case .literal:
                return nil
            case .variable(let name):
                return [
                    "name": name, "in": "path", "required": true,
                    "description": "One path segment, percent-decoded. Substituted into a topic it must not be empty, hold `/`, `+`, `#`, NUL or control characters, nor start with `$` (otherwise 400).",
                    "schema": ["type": "string", "minLength": 1] as OpenAPIObject,
                ]
            case .rest(let name):
                return [
                    "name": name, "in": "path", "required": true,
                    "description": "`{\(name)*}` in the mapping: one or more path segments, so `/a/b` is matched too and the value is the segments joined by `/`. OpenAPI path parameters cannot describe a value that spans segments: a client that percent-encodes `/` as `%2F` sends one segment holding a `/`, which a topic refuses (400). Send several segments unencoded.",
                    "schema": ["type": "string", "minLength": 1] as OpenAPIObject,
                ]
            }
        }
    }
}
