import Foundation

extension Volume {
    /// Whether two volumes share a grid: equal sizes and affines that differ by at most 1e-4 of the largest entry
    /// (float32 headers round-trip to about 1e-7).
    public func hasSameGrid(as other: Volume) -> Bool {
        guard grid == other.grid else { return false }
        let scale = max(1, (0..<3).flatMap { r in (0..<4).map { abs(other.affine[r, $0]) } }.max() ?? 1)
        return (0..<3).allSatisfy { r in (0..<4).allSatisfy { abs(affine[r, $0] - other.affine[r, $0]) <= 1e-4 * scale } }
    }

    /// What differs between this grid and `other`'s, with the numbers ("dims 80×96×36 vs 80×96×37", "affine row 1
    /// differs: [1, 0, 0, -40] vs [1, 0, 0, -38]"); nil when `hasSameGrid`.
    public func gridDifference(from other: Volume) -> String? {
        guard !hasSameGrid(as: other) else { return nil }
        if grid != other.grid { return "dims \(grid) vs \(other.grid)" }
        let scale = max(1, (0..<3).flatMap { r in (0..<4).map { abs(other.affine[r, $0]) } }.max() ?? 1)
        let row = (0..<3).first { r in (0..<4).contains { abs(affine[r, $0] - other.affine[r, $0]) > 1e-4 * scale } } ?? 0
        func text(_ m: Affine) -> String {
            "[" + (0..<4).map { String(format: "%g", m[row, $0]) }.joined(separator: ", ") + "]"
        }
        return "same dims \(grid), but affine row \(row + 1) differs: \(text(affine)) vs \(text(other.affine))"
    }
}
