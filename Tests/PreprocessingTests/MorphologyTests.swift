import NIfTI
@testable import Preprocessing
import Testing

/// Ball morphology against its definition, evaluated voxel by voxel (the brute force the boundary-stamping
/// implementation must equal): dilation {p : some q in X with p − q in B}, erosion {p : p + B inside X, outside
/// the grid background}, opening and the padded closing composed from them.
@Suite struct MorphologyTests {
    struct Case: CustomStringConvertible {
        var grid: GridSize, spacing: SIMD3<Double>, radius: Double, seed: UInt64
        var description: String { "\(grid) \(spacing) r \(radius)" }
    }
    static let cases = [
        Case(grid: GridSize(13, 11, 9), spacing: SIMD3(1, 1, 1), radius: 2, seed: 1),
        Case(grid: GridSize(14, 12, 8), spacing: SIMD3(1, 1, 2.5), radius: 3, seed: 2),
        Case(grid: GridSize(12, 15, 10), spacing: SIMD3(0.8, 1.2, 1.9), radius: 2.6, seed: 3),
        Case(grid: GridSize(9, 9, 9), spacing: SIMD3(2, 2, 4), radius: 4, seed: 4),
        Case(grid: GridSize(10, 8, 6), spacing: SIMD3(3, 3, 3), radius: 2, seed: 5),   // the point ball
    ]

    /// The ball's offsets from its definition.
    static func offsets(_ c: Case) -> [SIMD3<Int>] {
        var out: [SIMD3<Int>] = []
        let limit = c.radius * c.radius * (1 + 1e-6)
        for dk in -8...8 {
            for dj in -8...8 {
                for di in -8...8 {
                    let d = SIMD3(Double(di), Double(dj), Double(dk)) * c.spacing
                    if (d * d).sum() <= limit { out.append(SIMD3(di, dj, dk)) }
                }
            }
        }
        return out
    }

    /// A blobby random mask: noise smoothed by a majority over the 3×3×3 neighbourhood.
    static func mask(_ c: Case) -> [Bool] {
        let g = c.grid
        let noise = (0..<g.count).map { hashValue($0, seed: c.seed, 0, 1) < 0.45 }
        var out = noise
        for k in 0..<g.nz {
            for j in 0..<g.ny {
                for i in 0..<g.nx {
                    var n = 0, total = 0
                    for dk in -1...1 { for dj in -1...1 { for di in -1...1 {
                        let (x, y, z) = (i + di, j + dj, k + dk)
                        guard x >= 0, x < g.nx, y >= 0, y < g.ny, z >= 0, z < g.nz else { continue }
                        total += 1
                        if noise[g.index(x, y, z)] { n += 1 }
                    } } }
                    out[g.index(i, j, k)] = 2 * n > total
                }
            }
        }
        return out
    }

    static func bruteDilate(_ m: [Bool], _ g: GridSize, _ ball: [SIMD3<Int>]) -> [Bool] {
        var out = [Bool](repeating: false, count: g.count)
        for k in 0..<g.nz { for j in 0..<g.ny { for i in 0..<g.nx {
            out[g.index(i, j, k)] = ball.contains { d in
                let (x, y, z) = (i - d.x, j - d.y, k - d.z)
                return x >= 0 && x < g.nx && y >= 0 && y < g.ny && z >= 0 && z < g.nz && m[g.index(x, y, z)]
            }
        } } }
        return out
    }

    static func bruteErode(_ m: [Bool], _ g: GridSize, _ ball: [SIMD3<Int>], outside: Bool = false) -> [Bool] {
        var out = [Bool](repeating: false, count: g.count)
        for k in 0..<g.nz { for j in 0..<g.ny { for i in 0..<g.nx {
            out[g.index(i, j, k)] = ball.allSatisfy { d in
                let (x, y, z) = (i + d.x, j + d.y, k + d.z)
                guard x >= 0 && x < g.nx && y >= 0 && y < g.ny && z >= 0 && z < g.nz else { return outside }
                return m[g.index(x, y, z)]
            }
        } } }
        return out
    }

    @Test(arguments: cases)
    func dilationErosionOpeningClosingMatchTheDefinitions(_ c: Case) {
        let g = c.grid, ball = Self.offsets(c), element = BallElement(radius: c.radius, spacing: c.spacing)
        let m = Self.mask(c)
        #expect(m.contains(true) && m.contains(false))
        // The ball itself: row runs cover exactly the defined offsets.
        var runs = 0
        for row in element.rows { runs += 2 * row.halfWidth + 1 }
        #expect(runs == ball.count)
        let dilated = Morphology.dilate(m, grid: g, ball: element)
        #expect(dilated == Self.bruteDilate(m, g, ball))
        var eroded = Morphology.bytes(m)
        Morphology.erode(&eroded, g.nx, g.ny, g.nz, ball: element)
        #expect(Morphology.bools(eroded) == Self.bruteErode(m, g, ball))
        #expect(Morphology.open(m, grid: g, ball: element) == Self.bruteDilate(Self.bruteErode(m, g, ball), g, ball))
        // With the outside counting as mask (the couch opening).
        #expect(Morphology.open(m, grid: g, ball: element, outsideIsMask: true)
                == Self.bruteDilate(Self.bruteErode(m, g, ball, outside: true), g, ball))
        // Closing: on the grid padded by the ball's reach, cut back.
        let r = element.reach
        let pg = GridSize(g.nx + 2 * r.i, g.ny + 2 * r.j, g.nz + 2 * r.k)
        var padded = [Bool](repeating: false, count: pg.count)
        for k in 0..<g.nz { for j in 0..<g.ny { for i in 0..<g.nx {
            padded[pg.index(i + r.i, j + r.j, k + r.k)] = m[g.index(i, j, k)]
        } } }
        let closedPadded = Self.bruteErode(Self.bruteDilate(padded, pg, ball), pg, ball)
        var expected = m
        for k in 0..<g.nz { for j in 0..<g.ny { for i in 0..<g.nx {
            expected[g.index(i, j, k)] = closedPadded[pg.index(i + r.i, j + r.j, k + r.k)]
        } } }
        let closed = Morphology.close(m, grid: g, ball: element)
        #expect(closed == expected)
        // A closing never removes, an opening never adds.
        #expect(zip(m, closed).allSatisfy { !$0 || $1 })
    }
}
