/// The size of a 3-D voxel grid. Voxel (i, j, k) is stored at i + j·nx + k·nx·ny (NIfTI-1 §"dim"; i fastest).
public struct GridSize: Hashable, Sendable, CustomStringConvertible {
    public var nx: Int
    public var ny: Int
    public var nz: Int

    public init(_ nx: Int, _ ny: Int, _ nz: Int) {
        self.nx = nx
        self.ny = ny
        self.nz = nz
    }

    /// The number of voxels, nx·ny·nz.
    public var count: Int { nx * ny * nz }

    /// The linear index of voxel (i, j, k).
    @inlinable public func index(_ i: Int, _ j: Int, _ k: Int) -> Int { i + nx * (j + ny * k) }

    public var description: String { "\(nx)×\(ny)×\(nz)" }
}

/// A 3-D scalar volume in world space: Float32 voxels (i fastest), with the voxel-to-world affine chosen as
/// NIfTI prescribes (sform if sform_code > 0, else qform if qform_code > 0, else diag(pixdim)), and the source
/// header kept so that a derived volume (a synthetic CT) is written on exactly the same grid.
public struct Volume: Sendable {
    /// The grid size.
    public var grid: GridSize
    /// Voxel values after scl_slope/scl_inter scaling, i fastest; `voxels.count == grid.count`.
    public var voxels: [Float]
    /// The voxel-to-world (RAS+, millimetres) transform.
    public var affine: Affine
    /// The header this volume was read from, or one made for it; writing copies its geometry fields.
    public var header: NIfTIHeader

    /// Voxel spacing in millimetres (pixdim[1...3], converted from the header's xyzt_units: µm, mm or m).
    public var spacing: SIMD3<Double> { header.spacingInMillimetres }

    /// A volume read from a file, or derived from one: `header` supplies dims, pixdim, qform, sform, codes, units.
    public init(grid: GridSize, voxels: [Float], affine: Affine, header: NIfTIHeader) {
        precondition(voxels.count == grid.count, "voxel count \(voxels.count) does not match grid \(grid)")
        self.grid = grid
        self.voxels = voxels
        self.affine = affine
        self.header = header
    }

    /// A new volume on `affine`'s grid, with a header whose sform (code 2, aligned) and qform (code 1,
    /// scanner) both encode `affine` and whose pixdim holds the column norms of its linear part.
    public init(grid: GridSize, voxels: [Float], affine: Affine) {
        self.init(grid: grid, voxels: voxels, affine: affine, header: NIfTIHeader(grid: grid, affine: affine))
    }

    /// The same grid and header with other voxel values (e.g. a synthetic CT on an MR's grid).
    public func replacingVoxels(_ newVoxels: [Float]) -> Volume {
        Volume(grid: grid, voxels: newVoxels, affine: affine, header: header)
    }

    @inlinable public subscript(i: Int, j: Int, k: Int) -> Float {
        get { voxels[grid.index(i, j, k)] }
        set { voxels[grid.index(i, j, k)] = newValue }
    }
}
