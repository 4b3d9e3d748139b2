import CycleGAN
import Foundation
import Evaluation
import NIfTI
import VolumeIO
import NeuralNetwork
import Preprocessing
import Training
import Networks

/// Validation during training on paired, registered MR and CT volumes (matched by file name): the MR→CT generator
/// converts each MR with `VolumeTranslator`, and MAE, ME (HU) and PSNR (dB) are computed inside the reference CT's
/// body mask with the SynthRAD definitions (`SyntheticCTEvaluation`); the result is the mean over the volumes.
final class TrainingValidation {
    struct Case {
        var name: String
        var mr: Volume
        var ct: Volume
        var mask: [Bool]
    }
    struct Result {
        var mae: Double
        var me: Double
        var psnr: Double
        var volumes: Int
    }

    let cases: [Case]
    let preprocessing: PreprocessingConfiguration

    init(mrDirectory: URL, ctDirectory: URL, preprocessing: PreprocessingConfiguration) throws {
        self.preprocessing = preprocessing
        let mrFiles = try TrainingSession.volumeFiles(in: mrDirectory, what: "validation MR")
        let ctFiles = try TrainingSession.volumeFiles(in: ctDirectory, what: "validation CT")
        let ctByStem = Dictionary(ctFiles.map { (VolumeSource.stem(of: $0), $0) }, uniquingKeysWith: { a, _ in a })
        var cases: [Case] = []
        for mrURL in mrFiles {
            let stem = VolumeSource.stem(of: mrURL)
            guard let ctURL = ctByStem[stem] else {
                throw TrainingError(path: mrURL.path, reason: "no validation CT named \(stem) in \(ctDirectory.path)")
            }
            let mr: Volume, ct: Volume
            do {
                mr = try VolumeSource.read(mrURL)
                ct = try VolumeSource.read(ctURL)
            } catch {
                throw TrainingError(path: mrURL.path, reason: "cannot read the validation pair (\(error))")
            }
            guard mr.grid == ct.grid else {
                throw TrainingError(path: ctURL.path, reason: "grid \(ct.grid) differs from its MR's \(mr.grid) "
                                    + "(validation pairs must be registered on one grid)")
            }
            let mask = BodyMask.compute(ct)
            guard mask.contains(true) else {
                throw TrainingError(path: ctURL.path, reason: "the body mask of the validation CT is empty")
            }
            cases.append(Case(name: stem, mr: mr, ct: ct, mask: mask))
        }
        self.cases = cases
    }

    /// The mean metrics of `generator` over the validation pairs.
    func evaluate(_ generator: ResnetGenerator) throws -> Result {
        let translator = VolumeTranslator(generator: generator, preprocessing: preprocessing)
        var mae = 0.0, me = 0.0, psnr = 0.0
        for item in cases {
            let prediction: Volume
            do { prediction = try translator.translate(item.mr) } catch {
                throw TrainingError(path: item.name, reason: "validation conversion failed (\(error))")
            }
            let errors = try SyntheticCTEvaluation.differences(prediction: prediction.voxels, reference: item.ct.voxels,
                                                               mask: item.mask)
            mae += errors.mae
            me += errors.me
            psnr += try SyntheticCTEvaluation.peakSignalToNoiseRatio(prediction: prediction.voxels,
                                                                    reference: item.ct.voxels, mask: item.mask)
        }
        let n = Double(max(cases.count, 1))
        return Result(mae: mae / n, me: me / n, psnr: psnr / n, volumes: cases.count)
    }
}

/// The names of the validation values in `log.ndjson`, in the order they are written.
enum ValidationValue: String, CaseIterable {
    case mae, me, psnr, volumes
}

/// The validation pairs as the loop's validator: MR→CT with the current G_A, scored by the MAE (lower is better;
/// the set of the lowest is `best`).
struct SyntheticCTValidator: TrainingValidator {
    let validation: TrainingValidation
    let generator: ResnetGenerator

    func validate(iteration: Int) throws -> (values: [(name: String, value: Double)], score: Double) {
        // The inference contexts (arenas, F(4×4) kernels) are not kept for the next validation: the training steps
        // in between would hold them for nothing.
        defer { generator.releaseInferenceBuffers() }
        let result = try validation.evaluate(generator)
        let values: [ValidationValue: Double] = [.mae: result.mae, .me: result.me, .psnr: result.psnr, .volumes: Double(result.volumes)]
        return (ValidationValue.allCases.map { ($0.rawValue, values[$0]!) }, result.mae)
    }

    /// Each validation as one line for the user.
    final class MessageCallback: TrainingCallback {
        let message: (String) -> Void
        init(_ message: @escaping (String) -> Void) { self.message = message }

        func trainingDidValidate(iteration: Int, values: [(name: String, value: Double)], best: Bool) throws {
            func value(_ key: ValidationValue) -> Double { values.first { $0.name == key.rawValue }?.value ?? .nan }
            message(String(format: "validation at iteration %d: MAE %.1f HU, ME %.1f HU, PSNR %.2f dB (%d volumes)",
                           iteration, value(.mae), value(.me), value(.psnr), Int(value(.volumes))))
        }
    }
}
