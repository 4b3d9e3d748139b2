extension NIfTIHeader {
    /// A header for a new volume on `grid` whose sform (code 2) encodes `affine`.
    /// (The NIfTI module also derives the matching qform; see `setQform(from:)`.)
    public init(grid: GridSize, affine: Affine) {
        self.init()
        dim = [3, grid.nx, grid.ny, grid.nz, 1, 1, 1, 1]
        let n = affine.columnNorms
        pixdim = [1, n.x, n.y, n.z, 1, 1, 1, 1]
        sformCode = 2
        srow = [affine.rows[0], affine.rows[1], affine.rows[2]]
    }
}
