/// The error of a synthetic CT inside one tissue label: the per-structure breakdown synthetic-CT studies report
/// next to the whole-body MAE (e.g. bone, soft tissue and air MAE; Spadea et al. 2021, "Deep learning based
/// synthetic-CT generation in radiotherapy and PET: a review", §4). Sums, so volumes pool exactly.
public struct LabelErrorTally: Sendable, Hashable {
    /// Mask voxels carrying this label.
    public var voxels: Int = 0
    /// Σ |sCT − CT| over them (HU).
    public var absoluteErrorSum: Double = 0
    /// Σ (sCT − CT) over them (HU).
    public var errorSum: Double = 0

    public init(voxels: Int = 0, absoluteErrorSum: Double = 0, errorSum: Double = 0) {
        self.voxels = voxels
        self.absoluteErrorSum = absoluteErrorSum
        self.errorSum = errorSum
    }

    /// Mean absolute error (HU); nil without voxels.
    public var mae: Double? { voxels > 0 ? absoluteErrorSum / Double(voxels) : nil }
    /// Mean error (HU); nil without voxels.
    public var me: Double? { voxels > 0 ? errorSum / Double(voxels) : nil }

    /// Adds another tally of the same label (another volume).
    public mutating func add(_ other: LabelErrorTally) {
        voxels += other.voxels
        absoluteErrorSum += other.absoluteErrorSum
        errorSum += other.errorSum
    }
}

/// Per-label MAE and ME of a synthetic CT inside a mask.
public enum LabelErrors {
    /// The largest label value accepted (label maps are integer images, e.g. INT16 or UINT8 segmentations).
    public static let largestLabel = 65_535

    /// Tallies |sCT − CT| and sCT − CT per label over the mask voxels. Labels must be whole numbers in
    /// 0…`largestLabel` inside the mask (a label map resampled with linear interpolation is refused, not rounded).
    public static func tally(prediction: [Float], reference: [Float], labels: [Float], mask: [Bool]) throws
        -> [Int: LabelErrorTally] {
        guard prediction.count == reference.count, labels.count == reference.count, mask.count == reference.count else {
            throw EvaluationError("arrays of \(prediction.count), \(reference.count), \(labels.count) and \(mask.count) "
                                  + "voxels differ")
        }
        var sums: [LabelErrorTally] = []   // indexed by label
        try prediction.withUnsafeBufferPointer { p in
            try reference.withUnsafeBufferPointer { r in
                try labels.withUnsafeBufferPointer { l in
                    try mask.withUnsafeBufferPointer { m in
                        for v in 0..<m.count where m[v] {
                            let value = l[v]
                            guard value.isFinite, value >= 0, value <= Float(largestLabel), value == value.rounded() else {
                                throw EvaluationError("label \(value) at voxel \(v) is not a whole number in 0…\(largestLabel)")
                            }
                            let label = Int(value)
                            if label >= sums.count { sums.append(contentsOf: repeatElement(LabelErrorTally(), count: label + 1 - sums.count)) }
                            let difference = Double(p[v]) - Double(r[v])
                            sums[label].voxels += 1
                            sums[label].absoluteErrorSum += abs(difference)
                            sums[label].errorSum += difference
                        }
                    }
                }
            }
        }
        var result: [Int: LabelErrorTally] = [:]
        for (label, tally) in sums.enumerated() where tally.voxels > 0 { result[label] = tally }
        return result
    }
}
