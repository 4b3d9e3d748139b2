import Foundation

/// What `mr2ct info` reports about one volume file: header facts and intensity statistics (of the scaled values).
/// Encoded as one JSON object with stable snake_case keys (see `CodingKeys`).
public struct VolumeSummary: Codable, Sendable, Equatable {
    public var path: String
    /// "nifti1", "nifti2" or "analyze".
    public var format: String
    /// dim[1…3].
    public var dims: [Int]
    /// dim[4]·…·dim[7]: 1 for a 3-D file.
    public var volumes: Int
    /// The volume the statistics describe (0 unless asked for).
    public var volume: Int
    /// Voxel spacing in millimetres: pixdim[1…3] converted from the file's spatial units (µm, mm, m; unknown
    /// units are taken as mm), like every other command reads them.
    public var spacing: [Double]
    /// The spatial units the file stores (xyzt_units): "mm", "m", "um" or "unknown".
    public var spatialUnits: String
    /// Stored datatype name, e.g. "int16".
    public var datatype: String
    /// scl_slope and scl_inter as applied (1 and 0 when the file has none).
    public var sclSlope: Double
    public var sclInter: Double
    public var qformCode: Int
    public var sformCode: Int
    /// Which transform gives the affine: "sform", "qform" or "pixdim".
    public var affineSource: String
    /// Axis codes of the voxel axes (nibabel's aff2axcodes), e.g. "RAS", "LPS".
    public var orientation: String
    /// The voxel-to-world affine (4 rows of 4).
    public var affine: [[Double]]
    public var min: Double
    public var max: Double
    public var mean: Double
    /// NaN/Inf voxels replaced with 0 (only with the replace policy).
    public var replacedNonFinite: Int
    /// For a DICOM series (format "dicom"): its SeriesInstanceUID, Modality and transfer syntaxes; nil for NIfTI.
    public var seriesInstanceUID: String?
    public var modality: String?
    public var transferSyntaxes: [String]?

    enum CodingKeys: String, CodingKey {
        case path, format, dims, volumes, volume, spacing, datatype, orientation, affine, min, max, mean
        case spatialUnits = "spatial_units", sclSlope = "scl_slope", sclInter = "scl_inter"
        case qformCode = "qform_code", sformCode = "sform_code", affineSource = "affine_source"
        case replacedNonFinite = "replaced_non_finite"
        case seriesInstanceUID = "series_instance_uid", modality, transferSyntaxes = "transfer_syntaxes"
    }

    /// Reads `url` (volume `volumeIndex` of a 4-D file, 0 by default) and summarises it.
    public static func of(_ url: URL, volumeIndex: Int? = nil, maxVoxels: Int = 1 << 30,
                          nonFinite: NonFinitePolicy = .refuse) throws -> VolumeSummary {
        let volumes: Int
        do {
            volumes = try NIfTIFile.open(url.path, options: NIfTIReadOptions(volumeIndex: 0, maxVoxels: maxVoxels)).volumes
        } catch {
            throw NIfTIError(path: url.path, reason: error.reason)
        }
        let index = volumeIndex ?? 0
        let result = try NIfTIFile.readReporting(url, options: NIfTIReadOptions(
            volumeIndex: volumes > 1 || volumeIndex != nil ? index : nil, maxVoxels: maxVoxels, nonFinite: nonFinite))
        return describing(result.volume, path: url.path, volumes: volumes, volume: index,
                             replacedNonFinite: result.replacedNonFiniteVoxels)
    }

    /// The summary of a volume already read: header facts from `v.header`, statistics of its voxels. `format`
    /// overrides the header's version ("dicom" for a DICOM series, whose header MR2CT made).
    public static func describing(_ v: Volume, path: String, format: String? = nil, datatype: String? = nil, volumes: Int = 1,
                                  volume index: Int = 0, replacedNonFinite: Int = 0) -> VolumeSummary {
        var lo = Double.infinity, hi = -Double.infinity, sum = 0.0
        v.voxels.withUnsafeBufferPointer { p in
            for x in p { let d = Double(x); lo = Swift.min(lo, d); hi = Swift.max(hi, d); sum += d }
        }
        let h = v.header
        let scaled = h.sclSlope != 0 && h.sclSlope.isFinite
        let units: String
        switch h.xyztUnits & 0x07 {
        case 1: units = "m"
        case 2: units = "mm"
        case 3: units = "um"
        default: units = "unknown"
        }
        return VolumeSummary(
            path: path, format: format ?? ["analyze", "nifti1", "nifti2"][Swift.max(0, Swift.min(2, h.version))],
            dims: [v.grid.nx, v.grid.ny, v.grid.nz], volumes: volumes, volume: index,
            spacing: [v.spacing.x, v.spacing.y, v.spacing.z], spatialUnits: units, datatype: datatype ?? h.datatype.name,
            sclSlope: scaled ? h.sclSlope : 1, sclInter: scaled ? h.sclInter : 0,
            qformCode: h.qformCode, sformCode: h.sformCode,
            affineSource: h.sformCode > 0 ? "sform" : h.qformCode > 0 ? "qform" : "pixdim",
            orientation: v.affine.orientationCode,
            affine: v.affine.rows.map { [$0.x, $0.y, $0.z, $0.w] },
            min: lo, max: hi, mean: sum / Double(v.voxels.count), replacedNonFinite: replacedNonFinite)
    }

    /// One line of JSON (keys sorted, so the order is stable).
    public var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static func xformName(_ code: Int) -> String {
        switch code {
        case 0: "unknown"
        case 1: "scanner"
        case 2: "aligned"
        case 3: "talairach"
        case 4: "mni"
        case 5: "template"
        default: "code \(code)"
        }
    }

    static func number(_ x: Double) -> String { String(format: "%.6g", x) }

    /// The human-readable report: one "key  value" line per fact.
    public var text: String {
        var lines = [path]
        let dimsText = dims.map(String.init).joined(separator: " × ") + (volumes > 1 ? " × \(volumes) volumes (showing volume \(volume))" : "")
        lines.append("  dims         \(dimsText)")
        let unitsNote = switch spatialUnits {
        case "mm": ""
        case "unknown": " (units unknown, taken as mm)"
        default: " (stored in \(spatialUnits))"
        }
        lines.append("  spacing      \(spacing.map(Self.number).joined(separator: " × ")) mm" + unitsNote)
        lines.append("  datatype     \(datatype) (\(format))")
        lines.append("  scaling      " + (sclSlope == 1 && sclInter == 0 ? "none" : "value = \(Self.number(sclSlope)) × stored + \(Self.number(sclInter))"))
        lines.append("  qform_code   \(qformCode) (\(Self.xformName(qformCode)))")
        lines.append("  sform_code   \(sformCode) (\(Self.xformName(sformCode)))")
        lines.append("  orientation  \(orientation) (affine from \(affineSource))")
        for (i, row) in affine.enumerated() {
            let cells = row.map { String(format: "%10.4f", $0) }.joined(separator: " ")
            lines.append((i == 0 ? "  affine       " : "               ") + "[\(cells)]")
        }
        lines.append("  intensity    min \(Self.number(min))  max \(Self.number(max))  mean \(Self.number(mean))")
        if let seriesInstanceUID { lines.append("  series       \(seriesInstanceUID) (\(modality ?? ""))") }
        if let transferSyntaxes { lines.append("  syntax       \(transferSyntaxes.joined(separator: ", "))") }
        if replacedNonFinite > 0 { lines.append("  replaced     \(replacedNonFinite) NaN/Inf voxels with 0") }
        return lines.joined(separator: "\n")
    }
}
