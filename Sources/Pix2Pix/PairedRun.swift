import SyntheticCT
import Networks
import CycleGAN
import DataParallel
import Evaluation
import Foundation
import MR2CTSupport
import NIfTI
import VolumeIO
import NeuralNetwork
import Preprocessing
import Training

/// Validation of a paired run on registered validation pairs (`--val-mr`, `--val-ct`, matched and checked like the
/// training pairs): each MR converted as `mr2ct convert` converts it (`VolumeTranslator`, whole slices), MAE and
/// ME in HU inside the CT's body mask (SynthRAD definitions, `SyntheticCTEvaluation`), mean over the pairs. The
/// best MAE so far is kept as `checkpoints/best`.
public final class PairedValidator: TrainingValidator {
    struct Case { var name: String; var mr: Volume; var ct: Volume; var mask: [Bool] }
    let cases: [Case]
    let model: Pix2PixModel

    public init(pairs: [VolumePair], model: Pix2PixModel) throws {
        var cases: [Case] = []
        for pair in pairs {
            let mr: Volume, ct: Volume
            do { mr = try VolumeSource.read(pair.mr) } catch { throw RunError.data(path: pair.mr.path, reason: PairedSliceDataset.reason(error)) }
            do { ct = try VolumeSource.read(pair.ct) } catch { throw RunError.data(path: pair.ct.path, reason: PairedSliceDataset.reason(error)) }
            if let difference = mr.gridDifference(from: ct) {
                throw RunError.data(path: pair.mr.path, reason: "its validation CT \(pair.ct.path) is on another grid: \(difference)")
            }
            let mask = BodyMask.compute(ct)
            guard mask.contains(true) else { throw RunError.data(path: pair.ct.path, reason: "the body mask of the validation CT is empty") }
            cases.append(Case(name: NIfTIFile.stem(of: pair.mr), mr: mr, ct: ct, mask: mask))
        }
        self.cases = cases
        self.model = model
    }

    public func validate(iteration: Int) throws -> (values: [(name: String, value: Double)], score: Double) {
        let translator = VolumeTranslator(generator: model.translator, preprocessing: model.configuration.preprocessing)
        // The inference contexts are not kept for the next validation (the steps in between would hold them).
        defer { model.translator.releaseInferenceBuffers() }
        var mae = 0.0, me = 0.0
        for item in cases {
            let prediction: Volume
            do { prediction = try translator.translate(item.mr) } catch {
                throw RunError.data(path: item.name, reason: "validation conversion failed (\(error))")
            }
            let errors = try SyntheticCTEvaluation.differences(prediction: prediction.voxels, reference: item.ct.voxels, mask: item.mask)
            mae += errors.mae
            me += errors.me
        }
        let n = Double(max(cases.count, 1))
        return ([("mae", mae / n), ("me", me / n), ("volumes", Double(cases.count))], mae / n)
    }
}

/// One session of a paired (pix2pix) run on the `Training` layer: opens or creates the run folder, checks the
/// stored configuration and the pairs, prepares the data, builds the model, resumes from the newest complete set,
/// and wires validation, picture grids (MR | sCT | CT | error) and the report. The loop itself (schedule, SIGINT,
/// NaN guard, checkpoints with `latest`/`best`, log) is `TrainingLoop`'s.
public final class PairedRun {
    public let run: RunDirectory
    public let configuration: PairedRunConfiguration
    public let model: Pix2PixModel
    public let data: PairedSliceDataset
    public let loop: TrainingLoop<Pix2PixModel, PairedSliceDataset>

    /// The configuration stored in `directory`, nil when it holds no paired run.
    public static func storedConfiguration(_ directory: URL) throws -> PairedRunConfiguration? {
        let url = directory.appendingPathComponent("config.json")
        return FileManager.default.fileExists(atPath: url.path) ? try PairedRunConfiguration.read(url) : nil
    }

    /// The volume files of a folder (a clear error when it is missing or holds none).
    public static func volumeFiles(_ path: String, what: String) throws -> [URL] {
        do { return try TrainingSession.volumeFiles(in: URL(fileURLWithPath: path), what: what) } catch let error as TrainingError {
            throw RunError.data(path: error.path, reason: error.reason)
        }
    }

    /// With `parallel` (a data-parallel job) rank 0 opens and records the run; the other ranks open it for reading
    /// after a barrier, prepare the pairs themselves and train on their share of each global batch, writing nothing.
    public init(directory: URL, configuration requested: PairedRunConfiguration, requireExisting: Bool,
                parallel: DataParallelSession? = nil, messages: @escaping (String) -> Void) throws {
        let isRoot = parallel?.isRoot ?? true
        if !isRoot { try parallel?.communicator.barrier() }
        let run = isRoot ? try RunDirectory(url: directory) : try RunDirectory(readingAt: directory)
        let stored = run.hasConfiguration ? try PairedRunConfiguration.read(run.configurationURL) : nil
        if stored == nil, requireExisting { throw RunError.noRun(path: run.url.path) }
        var configuration = requested
        do { try configuration.validate() } catch { throw RunError.data(path: run.url.path, reason: "\(error)") }
        guard let mrPath = configuration.options.mrDirectory ?? stored?.options.mrDirectory,
              let ctPath = configuration.options.ctDirectory ?? stored?.options.ctDirectory else {
            throw RunError.data(path: run.url.path, reason: "no training data: give --mr and --ct folders of registered pairs")
        }
        configuration.options.mrDirectory = mrPath
        configuration.options.ctDirectory = ctPath
        let pairs = try PairedSliceDataset.match(mrFiles: Self.volumeFiles(mrPath, what: "MR"), ctFiles: Self.volumeFiles(ctPath, what: "CT"))
        configuration.pairs = pairs.map(\.mr.lastPathComponent)
        if let stored {
            configuration.epochLength = stored.epochLength
            let differences = stored.differences(from: configuration)
            guard differences.isEmpty else { throw RunError.configurationMismatch(path: run.url.path, differences: differences) }
        }
        let data = try PairedSliceDataset(pairs: pairs, configuration: configuration.preprocessing, seed: configuration.seed,
                                          augment: configuration.augment, cropSize: configuration.cropSize, messages: messages)
        if let stored, stored.epochLength != data.epochLength {
            throw RunError.data(path: run.url.path, reason: "the training data changed since the run began "
                                + "(epoch length \(stored.epochLength), now \(data.epochLength))")
        }
        configuration.epochLength = data.epochLength
        data.batchPlan = BatchPlan(batchSize: configuration.batchSize ?? 1, rank: parallel?.communicator.rank ?? 0,
                                   ranks: parallel?.communicator.size ?? 1)
        if isRoot {
            try AtomicFile.write(try configuration.jsonData(), to: run.configurationURL)
            try parallel?.communicator.barrier()
        }
        self.run = run
        self.configuration = configuration
        self.data = data
        model = Pix2PixModel(configuration: configuration)
        model.mrHistogram = data.mrHistogram
        model.sampleBatch = data.sampleBatch()
        loop = TrainingLoop(run: run, model: model, data: data, schedule: configuration.schedule(epochLength: data.epochLength),
                            initialLearningRate: configuration.model.learningRate, options: configuration.options.loop)
        loop.onMessage = messages
        loop.parallel = parallel
        if isRoot, let mr = configuration.options.validationMRDirectory, let ct = configuration.options.validationCTDirectory {
            let pairs = try PairedSliceDataset.match(mrFiles: Self.volumeFiles(mr, what: "validation MR"),
                                                     ctFiles: Self.volumeFiles(ct, what: "validation CT"))
            loop.validator = try PairedValidator(pairs: pairs, model: model)
        }
        try loop.resume()
        let grid = PictureGridCallback(model: model, directory: run.samplesDirectory)
        let m = configuration.model
        let report = ReportCallback(run: run, title: "MR2CT paired training (pix2pix): \(run.url.lastPathComponent)",
                                    configuration: ConfigurationTable.rows(configuration), grid: grid, firstChart: [.gL1, .gGAN],
                                    chartTitles: ("Generator: λ_L1·L1 and λ_GAN·GAN", "Discriminator (\(m.ganLoss.rawValue)): real and fake pairs"),
                                    gridCaption: "MR | synthetic CT | true CT | |sCT − CT| (0–300 HU) of one training slice")
        loop.callbacks = [grid, report]
    }
}
