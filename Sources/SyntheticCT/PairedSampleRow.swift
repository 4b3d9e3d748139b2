import NeuralNetwork
import Preprocessing
import Reporting

/// The picture row of a registered MR/CT pair: the MR (its centre channel, normalised values), the synthetic CT and
/// the true CT in HU (window −1000…1500 HU) and the error map |sCT − CT| in HU (0…300 HU). The row of pix2pix's
/// grids (`train --paired`) and the pair row of a semi-supervised run's grids.
public enum PairedSampleRow {
    public struct Image: Sendable {
        public var label: String
        public var width: Int
        public var height: Int
        public var pixels: [Float]
        public var window: IntensityWindow
    }

    /// MR | sCT | CT | |sCT − CT| from network-range tensors (`mr` 1 × C × H × W, `syntheticCT` and `ct`
    /// 1 × 1 × H × W), CT mapped back to HU with the preprocessing's CT map.
    public static func images(mr: Tensor, syntheticCT: Tensor, ct: Tensor, preprocessing: PreprocessingConfiguration) -> [Image] {
        let h = mr.shape[2], w = mr.shape[3], plane = h * w
        let centre = mr.shape[1] / 2
        let mrPlane = Array(mr.data[(centre * plane)..<((centre + 1) * plane)])
        let map = IntensityMap.ctWindow(preprocessing)
        let sct = syntheticCT.toArray().map { map.denormalize($0) }
        let reference = ct.toArray().map { map.denormalize($0) }
        let error = zip(sct, reference).map { abs($0 - $1) }
        let hu = IntensityWindow(lower: -1000, upper: 1500)
        return [Image(label: "MR", width: w, height: h, pixels: mrPlane, window: .normalized),
                Image(label: "sCT", width: w, height: h, pixels: sct, window: hu),
                Image(label: "CT", width: w, height: h, pixels: reference, window: hu),
                Image(label: "|err| 0-300", width: w, height: h, pixels: error, window: IntensityWindow(lower: 0, upper: 300))]
    }
}
