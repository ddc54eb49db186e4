/// Puts swift-prometheus's output in a stable order.
///
/// The registry emits metric families, and the series within a family, in
/// dictionary order, which changes from process to process. Sorted, two
/// scrapes read and diff line by line. The text itself is left as it is.
enum PrometheusText {
    static func sorted(_ text: [UInt8]) -> [UInt8] {
        var families: [Family] = []
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            let comment = Comment(line)
            // A family starts at its HELP line, or at TYPE when it has no help.
            let startsFamily = comment?.keyword == "HELP"
                || (comment?.keyword == "TYPE" && families.last?.name != comment?.name)
            if let comment, startsFamily {
                families.append(Family(name: comment.name))
            }
            if families.isEmpty { families.append(Family(name: "")) }
            if let comment {
                families[families.count - 1].header.append(line)
                if comment.keyword == "TYPE" { families[families.count - 1].type = comment.rest }
            } else {
                families[families.count - 1].samples.append(line)
            }
        }
        var output: [UInt8] = []
        output.reserveCapacity(text.count)
        for family in families.sorted(by: { $0.name < $1.name }) {
            // A histogram's lines are in bucket order, which sorting would
            // break; a counter or gauge has one line per series.
            let samples = family.type == "histogram" ? family.samples : family.samples.sorted()
            for line in family.header + samples {
                output.append(contentsOf: line.utf8)
                output.append(UInt8(ascii: "\n"))
            }
        }
        return output
    }

    private struct Family {
        var name: Substring
        var type: Substring = ""
        var header: [Substring] = []
        var samples: [Substring] = []
    }

    /// `# HELP name text` or `# TYPE name type`.
    private struct Comment {
        var keyword: Substring
        var name: Substring
        var rest: Substring

        init?(_ line: Substring) {
            guard line.hasPrefix("# ") else { return nil }
            let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count >= 3 else { return nil }
            keyword = parts[1]
            name = parts[2]
            rest = parts.count > 3 ? parts[3] : ""
        }
    }
}
