import Foundation

/// One `-----BEGIN LABEL-----` ... `-----END LABEL-----` block of a PEM file.
struct PEMBlock {
    var discriminator: String
    /// The whole block, for the X509 parsers (which take one at a time).
    var text: String

    /// The PEM blocks of a file, in order; text between them is ignored
    /// (as OpenSSL does, e.g. the "subject=" lines some tools write).
    static func all(in text: String) -> [PEMBlock] {
        var blocks: [PEMBlock] = []
        var open: (label: String, lines: [Substring])?
        for line in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            let trimmed = Substring(line.trimmingCharacters(in: .whitespaces))
            if var block = open {
                block.lines.append(trimmed)
                if trimmed == "-----END \(block.label)-----" {
                    blocks.append(PEMBlock(discriminator: block.label, text: block.lines.joined(separator: "\n") + "\n"))
                    open = nil
                } else {
                    open = block
                }
            } else if trimmed.hasPrefix("-----BEGIN "), trimmed.hasSuffix("-----") {
                open = (String(trimmed.dropFirst("-----BEGIN ".count).dropLast(5)), [trimmed])
            }
        }
        return blocks
    }
}
