/// Columns padded to their widest cell, for the human output of the queue
/// commands. The last column is not padded (it holds free text).
struct TextTable {
    enum Alignment { case left, right }

    var columns: [(title: String, alignment: Alignment)]
    var rows: [[String]] = []

    init(_ columns: [(String, Alignment)]) {
        self.columns = columns.map { (title: $0.0, alignment: $0.1) }
    }

    mutating func append(_ row: [String]) {
        rows.append(row)
    }

    func render(indent: String = "") -> String {
        let all = [columns.map(\.title)] + rows
        let widths = columns.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            let cells = row.enumerated().map { column, cell -> String in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                if column == columns.count - 1 { return columns[column].alignment == .right ? padding + cell : cell }
                return columns[column].alignment == .right ? padding + cell : cell + padding
            }
            return indent + cells.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
