import Foundation
import MR2CTSupport

/// A self-contained HTML page (no scripts, no network: inline CSS, inline SVG charts, PNGs embedded as
/// `data:` URIs), e.g. a training run's report.html: title, configuration table, loss curves, the latest sample
/// grids and a validation metrics table. It opens offline in any browser and can be mailed as one file.
public struct HTMLReport: Sendable {
    /// A picture for the report: PNG bytes, or a PNG file read (and embedded) when the report is rendered.
    public enum Picture: Sendable {
        case png(Data)
        case file(URL)
    }

    /// One element of a section.
    public enum Block: Sendable {
        /// A paragraph of plain text (escaped).
        case paragraph(String)
        /// A two-column table of names and values (e.g. the configuration).
        case keyValueTable([(key: String, value: String)])
        /// A table with a header row; numeric-looking cells are right-aligned.
        case table(headers: [String], rows: [[String]])
        /// An inline SVG (e.g. `LineChartSVG.render()`), inserted as is.
        case svg(String)
        /// A picture with a caption.
        case picture(Picture, caption: String)
        /// Preformatted text (logs, commands).
        case preformatted(String)
    }

    public struct Section: Sendable {
        public var title: String
        public var blocks: [Block]
        public init(title: String, blocks: [Block]) {
            self.title = title
            self.blocks = blocks
        }
    }

    public var title: String
    /// A line under the title, e.g. "updated 2026-11-27 12:00 UTC · iteration 4000 / 20000".
    public var subtitle: String?
    public var sections: [Section]

    public init(title: String, subtitle: String? = nil, sections: [Section] = []) {
        self.title = title
        self.subtitle = subtitle
        self.sections = sections
    }

    /// The page as HTML5. A `.file` picture that cannot be read becomes a short note naming the file.
    public func render() -> String {
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(Self.escape(title))</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 24px auto; max-width: 1100px; color: #222; padding: 0 16px; }
        h1 { font-size: 1.5em; margin-bottom: 4px; }
        h2 { font-size: 1.15em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }
        .subtitle { color: #666; margin-top: 0; }
        table { border-collapse: collapse; margin: 8px 0; font-size: 0.92em; }
        th, td { border: 1px solid #ddd; padding: 3px 9px; text-align: left; vertical-align: top; }
        th { background: #f3f3f3; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        td.key { color: #555; }
        figure { margin: 10px 0; display: inline-block; }
        figure img { image-rendering: pixelated; max-width: 100%; border: 1px solid #ccc; }
        figcaption { color: #555; font-size: 0.9em; }
        pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 0.85em; }
        .missing { color: #a00; }
        svg { max-width: 100%; height: auto; }
        </style>
        </head>
        <body>
        <h1>\(Self.escape(title))</h1>

        """
        if let subtitle { html += "<p class=\"subtitle\">\(Self.escape(subtitle))</p>\n" }
        for section in sections {
            html += "<section>\n<h2>\(Self.escape(section.title))</h2>\n"
            for block in section.blocks { html += Self.render(block) }
            html += "</section>\n"
        }
        html += "</body>\n</html>\n"
        return html
    }

    /// Renders the page and writes it atomically.
    public func write(to url: URL) throws {
        try AtomicFile.write(Data(render().utf8), to: url)
    }

    static func render(_ block: Block) -> String {
        switch block {
        case .paragraph(let text):
            return "<p>\(escape(text))</p>\n"
        case .keyValueTable(let pairs):
            var s = "<table>\n"
            for (key, value) in pairs {
                s += "<tr><td class=\"key\">\(escape(key))</td><td>\(escape(value))</td></tr>\n"
            }
            return s + "</table>\n"
        case .table(let headers, let rows):
            var s = "<table>\n<tr>" + headers.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
            for row in rows {
                s += "<tr>" + row.map { cell in
                    isNumeric(cell) ? "<td class=\"num\">\(escape(cell))</td>" : "<td>\(escape(cell))</td>"
                }.joined() + "</tr>\n"
            }
            return s + "</table>\n"
        case .svg(let svg):
            return "<div>\n\(svg)</div>\n"
        case .picture(let picture, let caption):
            let data: Data
            switch picture {
            case .png(let bytes): data = bytes
            case .file(let url):
                guard let bytes = try? Data(contentsOf: url) else {
                    return "<p class=\"missing\">(picture not available: \(escape(url.lastPathComponent)))</p>\n"
                }
                data = bytes
            }
            return "<figure><img alt=\"\(escape(caption))\" src=\"data:image/png;base64,\(data.base64EncodedString())\">"
                + "<figcaption>\(escape(caption))</figcaption></figure>\n"
        case .preformatted(let text):
            return "<pre>\(escape(text))</pre>\n"
        }
    }

    /// True for cells like "74.2", "-3", "1.5e-3", "32.1 ± 2.0", "12 %".
    static func isNumeric(_ cell: String) -> Bool {
        let trimmed = cell.trimmingCharacters(in: .whitespaces)
        guard let first = trimmed.unicodeScalars.first else { return false }
        return CharacterSet(charactersIn: "0123456789-+.").contains(first)
            && trimmed.unicodeScalars.allSatisfy { CharacterSet(charactersIn: "0123456789-+.eE ±%").contains($0) }
    }

    static func escape(_ s: String) -> String { LineChartSVG.escape(s) }
}
