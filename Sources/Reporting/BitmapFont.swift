/// A 5×7 pixel bitmap font (drawn for MR2CT) for labels in PNG grids: capitals, digits and common punctuation;
/// lower-case letters are drawn as capitals, anything else as "?". Each glyph cell is 6×9 pixels
/// (one column and two rows of spacing).
public enum BitmapFont {
    static let glyphWidth = 5
    static let glyphHeight = 7
    static let advance = 6
    public static let lineHeight = 9

    /// Rows top to bottom, "#" = ink.
    private static let source: [Character: String] = [
        "A": ".###. #...# #...# ##### #...# #...# #...#",
        "B": "####. #...# #...# ####. #...# #...# ####.",
        "C": ".###. #...# #.... #.... #.... #...# .###.",
        "D": "####. #...# #...# #...# #...# #...# ####.",
        "E": "##### #.... #.... ####. #.... #.... #####",
        "F": "##### #.... #.... ####. #.... #.... #....",
        "G": ".###. #...# #.... #.### #...# #...# .####",
        "H": "#...# #...# #...# ##### #...# #...# #...#",
        "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
        "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
        "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
        "L": "#.... #.... #.... #.... #.... #.... #####",
        "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
        "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
        "O": ".###. #...# #...# #...# #...# #...# .###.",
        "P": "####. #...# #...# ####. #.... #.... #....",
        "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
        "R": "####. #...# #...# ####. #.#.. #..#. #...#",
        "S": ".#### #.... #.... .###. ....# ....# ####.",
        "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
        "U": "#...# #...# #...# #...# #...# #...# .###.",
        "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
        "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
        "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
        "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
        "Z": "##### ....# ...#. ..#.. .#... #.... #####",
        "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
        "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
        "2": ".###. #...# ....# ...#. ..#.. .#... #####",
        "3": "####. ....# ....# .###. ....# ....# ####.",
        "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
        "5": "##### #.... ####. ....# ....# #...# .###.",
        "6": "..##. .#... #.... ####. #...# #...# .###.",
        "7": "##### ....# ...#. ..#.. .#... .#... .#...",
        "8": ".###. #...# #...# .###. #...# #...# .###.",
        "9": ".###. #...# #...# .#### ....# ...#. .##..",
        " ": "..... ..... ..... ..... ..... ..... .....",
        ".": "..... ..... ..... ..... ..... .##.. .##..",
        ",": "..... ..... ..... ..... .##.. ..#.. .#...",
        "-": "..... ..... ..... ##### ..... ..... .....",
        "_": "..... ..... ..... ..... ..... ..... #####",
        ":": "..... .##.. .##.. ..... .##.. .##.. .....",
        "/": "....# ....# ...#. ..#.. .#... #.... #....",
        "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
        ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
        "[": ".###. .#... .#... .#... .#... .#... .###.",
        "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
        "%": "##..# ##..# ...#. ..#.. .#... #..## #..##",
        "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
        "=": "..... ..... ##### ..... ##### ..... .....",
        "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
        "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
        ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
        "→": "..... ..#.. ...#. ##### ...#. ..#.. .....",
        "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
        "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
        "'": "..#.. ..#.. ..... ..... ..... ..... .....",
        "*": "..... #.#.# .###. ##### .###. #.#.# .....",
        "±": "..#.. ..#.. ##### ..#.. ..#.. ..... #####",
    ]

    /// Each glyph as 7 row bitmasks, bit 4 = leftmost column.
    private static let glyphs: [Character: [UInt8]] = source.mapValues { text in
        text.split(separator: " ").map { row in
            row.reduce(UInt8(0)) { bits, c in (bits << 1) | (c == "#" ? 1 : 0) }
        }
    }

    /// The rows of `character`'s glyph.
    static func glyph(_ character: Character) -> [UInt8] {
        if let g = glyphs[character] { return g }
        if let upper = character.uppercased().first, let g = glyphs[upper] { return g }
        return glyphs["?"]!
    }

    /// Width in pixels of `text` at `scale` (without the trailing spacing column).
    public static func width(of text: String, scale: Int) -> Int {
        text.isEmpty ? 0 : (text.count * advance - 1) * scale
    }

    /// Draws `text` with its top-left corner at (x, y) into a gray image of `width` × `height`, clipping at
    /// the image edges and at `maxX` (exclusive).
    public static func draw(_ text: String, x: Int, y: Int, scale: Int, value: UInt8,
                     into pixels: inout [UInt8], width: Int, height: Int, maxX: Int) {
        var penX = x
        for character in text {
            let rows = glyph(character)
            for (r, bits) in rows.enumerated() {
                for c in 0..<glyphWidth where bits & (1 << (glyphWidth - 1 - c)) != 0 {
                    for dy in 0..<scale {
                        let py = y + r * scale + dy
                        guard py >= 0, py < height else { continue }
                        for dx in 0..<scale {
                            let px = penX + c * scale + dx
                            guard px >= 0, px < min(width, maxX) else { continue }
                            pixels[py * width + px] = value
                        }
                    }
                }
            }
            penX += advance * scale
            if penX >= maxX { break }
        }
    }
}
