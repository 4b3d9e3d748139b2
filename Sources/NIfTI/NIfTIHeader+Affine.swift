extension NIfTIHeader {
    /// A header for a new volume on `grid` whose sform (code 2, aligned) and qform (code 1, scanner) both encode
    /// `affine`: the qform is the quaternion of the rotation part with qfac = det sign (nifti_dmat44_to_quatern,
    /// as nibabel's `set_qform`), pixdim[1…3] the column norms. A shear, which a quaternion cannot carry, is only
    /// in the sform; readers take the sform first (NIfTI-1 §"Method 3").
    public init(grid: GridSize, affine: Affine) {
        self.init()
        dim = [3, grid.nx, grid.ny, grid.nz, 1, 1, 1, 1]
        let n = affine.columnNorms
        let q = NIfTIBridge.quaternion(of: affine)
        pixdim = [q[9] < 0 ? -1 : 1, n.x, n.y, n.z, 1, 1, 1, 1]
        sformCode = 2
        srow = [affine.rows[0], affine.rows[1], affine.rows[2]]
        qformCode = 1
        quaternB = q[0]
        quaternC = q[1]
        quaternD = q[2]
        qoffset = SIMD3(q[3], q[4], q[5])
    }

    /// The qform transform (NIfTI-1 method 2): quaternion, offsets, pixdim[1…3] and qfac = sign of pixdim[0].
    public var qformAffine: Affine {
        let qfac: Double = pixdim[0] < 0 ? -1 : 1
        return NIfTIBridge.affine(quaternion: [quaternB, quaternC, quaternD, qoffset.x, qoffset.y, qoffset.z,
                                               pixdim[1], pixdim[2], pixdim[3], qfac])
    }

    /// The sform transform (NIfTI-1 method 3): srow_x, srow_y, srow_z.
    public var sformAffine: Affine {
        Affine(rows: [srow[0], srow[1], srow[2], SIMD4(0, 0, 0, 1)])
    }

    /// Millimetres per spatial unit of this header's `xyzt_units` (NIfTI-1 §"xyzt_units": NIFTI_UNITS_METER 1,
    /// NIFTI_UNITS_MM 2, NIFTI_UNITS_MICRON 3): 1000, 1 or 0.001; 1 for unknown (0) or undefined codes, which are
    /// treated as millimetres (as nibabel and most tools do) and kept as they are when written.
    public var millimetresPerSpatialUnit: Double {
        switch xyztUnits & 0x07 {
        case 1: 1000
        case 3: 0.001
        default: 1
        }
    }

    /// The voxel-to-world transform NIfTI prescribes, in millimetres: sform if sform_code > 0, else qform if
    /// qform_code > 0, else diag(pixdim[1…3]) (ANALYZE, method 1), scaled from the header's spatial units
    /// (`millimetresPerSpatialUnit`) so that every consumer sees millimetres whatever the file stores.
    public var affine: Affine {
        let stored: Affine
        if sformCode > 0 {
            stored = sformAffine
        } else if qformCode > 0 {
            stored = qformAffine
        } else {
            stored = .scaling(SIMD3(pixdim[1], pixdim[2], pixdim[3]))
        }
        let scale = millimetresPerSpatialUnit
        guard scale != 1 else { return stored }
        var rows = stored.rows
        for r in 0..<3 { rows[r] *= scale }
        return Affine(rows: rows)
    }

    /// Voxel spacing in millimetres: pixdim[1…3] scaled from the header's spatial units.
    public var spacingInMillimetres: SIMD3<Double> {
        SIMD3(pixdim[1], pixdim[2], pixdim[3]) * millimetresPerSpatialUnit
    }
}
