import ArgumentParser
import CycleGAN
import DataParallel
import SyntheticCT
import Foundation
import MR2CTSupport
import NeuralNetwork
import Networks
import Pix2Pix
import Preprocessing
import Reporting
import Training

/// `mr2ct train`: unpaired CycleGAN training on a folder of MR volumes and a folder of CT volumes.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an unpaired MR↔CT CycleGAN on a folder of MR volumes and a folder of CT volumes, or with --paired a pix2pix MR→CT model on registered pairs.",
        discussion: """
        Defaults are the reference CycleGAN's (Zhu et al. 2017): ResNet generator with 9 blocks, ngf 64, 70×70 \
        PatchGAN with ndf 64, LSGAN, cycle weight 10, identity 0.5, Adam 2e-4 with β1 0.5, a 50-image pool, \
        100 epochs at the initial rate then 100 of linear decay, an epoch being max(MR slices, CT slices).

        The run folder holds config.json, log.ndjson (one JSON line per iteration), samples/*.png, report.html and \
        checkpoints/{iter_NNNNNNN,latest,best}/ (G_A = MR→CT generator, usable by `mr2ct convert --model RUN`). \
        Running again on the same --run folder (or with --resume) continues exactly where it stopped; options not \
        given are taken from the run, options given must agree with it, except a longer schedule (--iterations, \
        --epochs, --decay-epochs), which extends the run: from the resumed iteration on the learning rate follows \
        the new schedule. SIGINT/SIGTERM finish the current iteration, save a checkpoint and exit with status \
        130/143; a second signal exits at once. Exit status: 0 done, 1 failure (message on stderr), 64 usage, \
        130/143 stopped by a signal (resumable).

        With --paired the folders hold registered MR/CT pairs (matched by name as `mr2ct evaluate` matches them, \
        each pair on one grid) and the model is pix2pix (Isola et al. 2017): λ_L1·|G(MR) − CT| plus a conditional \
        PatchGAN on (MR, CT) pairs, defaults as pytorch-CycleGAN-and-pix2pix's pix2pix (U-Net 256 with dropout, \
        vanilla GAN loss, λ_L1 100, 100 + 100 epochs of the pairs' slices) but with instance normalisation (how \
        pix2pix's batch normalisation at batch size 1 normalises, in training and in the paper's inference) and \
        the soft-tissue CT map of --preset sct. The run folder's generator (G.safetensors in checkpoints/best or \
        checkpoints/latest) is what `mr2ct convert --model RUN` uses.

        With --paired-mr and --paired-ct (registered pairs, matched and checked as with --paired) besides --mr and \
        --ct the run is semi-supervised: the CycleGAN losses on all data (the pairs' MR join the MR pool, their CT \
        the CT pool) plus λ_sup · mean |G_A(MR) − CT| on one pair slice per iteration (--lambda-supervised, default \
        100; --l1-in-body for the body mask only). Its G_A converts like any unpaired model.
        """
    )

    // MARK: Data and run folder
    @Option(name: .long, help: ArgumentHelp("Folder of MR training volumes (.nii, .nii.gz files, DICOM series in it or in its subfolders).", valueName: "DIR"))
    var mr: String?
    @Option(name: .long, help: ArgumentHelp("Folder of CT training volumes (HU; .nii, .nii.gz files, DICOM series in it or in its subfolders).", valueName: "DIR"))
    var ct: String?
    @OptionGroup var runFolder: RunFolderOptions
    @Option(name: .customLong("val-mr"), help: ArgumentHelp("Folder of paired validation MR volumes.", valueName: "DIR"))
    var validationMR: String?
    @Option(name: .customLong("val-ct"), help: ArgumentHelp("Folder of validation CT volumes, same names as --val-mr.", valueName: "DIR"))
    var validationCT: String?

    // MARK: Paired training (issue 18)
    @Flag(name: .long, help: "Paired (pix2pix) training on registered MR/CT pairs: --mr and --ct hold the same subjects, matched by name, each pair on one grid.")
    var paired = false
    @Option(name: .long, help: ArgumentHelp("With --paired: the generator, resnet (the CycleGAN ResNet generator) or the pix2pix U-Net unet_128 or unet_256 (slice size a multiple of 128 or 256). (default: unet_256)", valueName: "NAME"))
    var generator: PairedGenerator?
    @Option(name: .customLong("lambda-l1"), help: "With --paired: weight of the L1 term |G(MR) − CT|. (default: 100)")
    var lambdaL1: Float?
    @Flag(name: .customLong("l1-in-body"), help: "With --paired, or --paired-mr/--paired-ct: the L1 term (the supervised term of semi-supervised training) only inside the MR's body mask (the voxels conversion keeps).")
    var l1InBody = false
    @Option(name: .customLong("lambda-gan"), help: "With --paired: weight of the conditional adversarial term; 0 trains pure supervised L1 regression without a discriminator. (default: 1)")
    var lambdaGAN: Float?
    @Option(name: .long, help: ArgumentHelp("With --paired: normalisation of the U-Net and the discriminator, instance or batch (the reference's layers; conversion then uses the running statistics, which at batch size 1 differ from what training normalised with). (default: instance)", valueName: "instance|batch"))
    var norm: NormalizationKind?
    @Option(name: .customLong("ct-map"), help: ArgumentHelp("With --paired: how CT HU map to the network's [-1, 1]: soft-tissue (the piecewise-linear map of --preset sct: -1024…-200 HU → [-1, -0.6], -200…250 → [-0.6, 0.4], 250…3000 → [0.4, 1]) or window (linear -1024…3000). (default: soft-tissue)", valueName: "NAME"))
    var ctMap: CTMapOption?
    @Flag(name: .customLong("no-dropout"), help: "With --paired: no dropout in the U-Net (pix2pix trains with dropout 0.5 in its inner blocks).")
    var noDropout = false

    // MARK: Semi-supervised training (issue 18)
    @Option(name: .customLong("paired-mr"), help: ArgumentHelp("Semi-supervised training: a folder of MR volumes registered to the CT volumes of --paired-ct (matched by name and each pair on one grid, as with --paired). Their MR join the --mr pool and their CT the --ct pool for the CycleGAN losses, and every iteration adds the supervised term λ_sup · mean |G_A(MR) − CT| on one of their slices.", valueName: "DIR"))
    var pairedMR: String?
    @Option(name: .customLong("paired-ct"), help: ArgumentHelp("Semi-supervised training: the registered CT volumes (HU) of the --paired-mr subjects, same names.", valueName: "DIR"))
    var pairedCT: String?
    @Option(name: .customLong("lambda-supervised"), help: "With --paired-mr/--paired-ct: weight λ_sup of the supervised L1 term on the pairs (pix2pix's λ_L1; the cycle terms weigh 10 and the adversarial terms 1); 0 trains exactly as unpaired on the pooled data. (default: 100)")
    var lambdaSupervised: Float?

    // MARK: Preset
    @Option(name: .long, help: ArgumentHelp("Start from a named recipe; every option given explicitly overrides its value. "
        + TrainingPreset.allCases.map { "\($0.rawValue): \($0.summary)." }.joined(separator: " ")
        + " (default: reference)", valueName: "NAME"))
    var preset: TrainingPreset?

    // MARK: Preprocessing
    @Option(name: .long, help: "In-plane slice size (pad/crop), a multiple of 4. (default: 256)")
    var sliceSize: Int?
    @Option(name: .long, help: "Slicing plane: axial, coronal or sagittal. (default: axial)")
    var plane: String?
    @Option(name: .long, help: "Adjacent slices as input channels (2.5-D): 1, 3 or 5. (default: 1)")
    var context: Int?
    @Option(name: .long, help: "Resample slices to this in-plane spacing (mm) first. (default: none)")
    var spacing: Double?
    @Option(name: .long, help: ArgumentHelp("Train on random N×N windows of the slices (multiple of 4, at most --slice-size); conversion still uses whole slices. (default: whole slices)", valueName: "N"))
    var cropSize: Int?
    @Option(name: .customLong("ct-outside-body"), help: ArgumentHelp("CT voxels outside the CT's body mask: air sets the couch, positioning aids and field-of-view padding to -1024 HU before training (as SynthRAD prepares its CTs), keep leaves them as scanned. The MR outside its body mask is set to its background in new runs either way. (default: air; keep for runs made before the option existed)", valueName: "air|keep"))
    var ctOutsideBody: OutsideBody?

    // MARK: Model
    @Option(name: .long, help: "Generator filters in the first layer. (default: 64)")
    var ngf: Int?
    @Option(name: .long, help: "Discriminator filters in the first layer. (default: 64)")
    var ndf: Int?
    @Option(name: .long, help: "Residual blocks of the generator. (default: 9)")
    var residualBlocks: Int?
    @Option(name: .long, help: "Strided layers of the PatchGAN discriminator. (default: 3)")
    var discriminatorLayers: Int?
    @Option(name: .long, help: "Adversarial loss: lsgan or vanilla. (default: lsgan; with --paired vanilla, as pix2pix)")
    var ganLoss: String?
    @Option(name: .customLong("lambda-a"), help: "Cycle loss weight A→B→A. (default: 10)")
    var lambdaA: Float?
    @Option(name: .customLong("lambda-b"), help: "Cycle loss weight B→A→B. (default: 10)")
    var lambdaB: Float?
    @Option(name: .customLong("lambda-identity"), help: "Identity loss weight, relative to the cycle weights. (default: 0.5)")
    var lambdaIdentity: Float?
    @Option(name: .customLong("lambda-structure"),
            help: "Weight of the MIND structure-consistency loss between each image and its translation (Yang et al. 2018); 0 = off, as in the reference. (default: 0)")
    var lambdaStructure: Float?
    @Option(name: .customLong("backward-cycle"), help: ArgumentHelp("What the B→A→B cycle term trains: cycle (both generators, the reference) or back-translation (G_A only, on the synthetic MR G_B(CT) taken as a fixed input: an L1 regression on synthetic pairs, Sennrich et al. 2016). (default: cycle)", valueName: "cycle|back-translation"))
    var backwardCycle: BackwardCycle?
    @Option(name: .long, help: "Initial Adam learning rate. (default: 0.0002)")
    var lr: Float?
    @Option(name: .long, help: "Adam β1. (default: 0.5)")
    var beta1: Float?
    @Option(name: .long, help: "Image pool size (fakes shown to the discriminators). (default: 50)")
    var poolSize: Int?

    // MARK: Schedule
    @Option(name: .long, help: "Epochs at the initial learning rate. (default: 100)")
    var epochs: Int?
    @Option(name: .long, help: "Epochs of linear decay to zero. (default: 100)")
    var decayEpochs: Int?
    @Option(name: .long, help: "Train this many iterations instead (half constant, half decaying).")
    var iterations: Int?
    @Option(name: .long, help: "Random seed (weights, slice order, pools). (default: 0)")
    var seed: UInt64?
    @Flag(name: .long, help: "Randomly flip training slices left-right.")
    var augment = false
    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Slices per iteration on each process (instance normalisation per slice, losses averaged over the batch, the image pools deciding per slice as the reference does). Under mpirun -n N or srun each of the N ranks takes its own B slices of every iteration's N × B, and their gradients are averaged. Stored in the run (absent in config.json means 1). (default: 1)", valueName: "B"))
    var batchSize: Int?

    // MARK: Session options
    @OptionGroup var session: TrainingSessionOptions
    @Option(name: .long, help: "Arithmetic of the convolutions in this session: f32 (PyTorch's float32) or bf16 (mixed precision: bfloat16 convolution operands with float32 accumulation, float32 master weights, Adam state, normalisation and losses; native oneDNN kernels only on CPUs with AVX512 BF16, emulated — slower than f32 — elsewhere). A session option like --threads: not stored in the run.")
    var precision: Precision = .f32
    @Option(name: .long, help: "How the convolutions compute in this session: automatic (oneDNN for the passes and shapes where it measured faster, MR2CT's kernels elsewhere, the residual blocks' backward passes by Winograd F(2×2,3×3) on the forward kernels; within the PyTorch goldens' tolerance, not bit for bit the engine before oneDNN), native (MR2CT's own kernels only, with the arithmetic of the engine before oneDNN: backward-data on adjoint kernels of its own, im2col weight gradients; runs trained with it before resume bit for bit), or im2col, winograd (F(2×2,3×3)), winograd4 (F(4×4,3×3)), onednn to force one. A session option like --threads: not stored in the run.")
    var convolution: ConvolutionAlgorithm = .automatic
    @Option(name: .long, help: "Validate every N iterations. (default: once per epoch)")
    var validateEvery: Int?

    func validate() throws {
        try validatePairedOptions()
        func positive(_ value: Int?, _ name: String) throws {
            if let value, value < 1 { throw ValidationError("--\(name) must be at least 1") }
        }
        try positive(sliceSize, "slice-size"); try positive(ngf, "ngf"); try positive(ndf, "ndf")
        try positive(discriminatorLayers, "discriminator-layers"); try positive(iterations, "iterations")
        try positive(validateEvery, "validate-every"); try positive(batchSize, "batch-size")
        if let sliceSize, sliceSize % 4 != 0 || sliceSize < 16 {
            throw ValidationError("--slice-size must be a multiple of 4, at least 16")
        }
        if let cropSize, let problem = UnpairedSliceLoader.cropProblem(cropSize, sliceSize: sliceSize ?? cropSize) {
            throw ValidationError("--crop-size: \(problem)")
        }
        if let context, ![1, 3, 5].contains(context) { throw ValidationError("--context must be 1, 3 or 5") }
        if let plane, SlicePlane(rawValue: plane) == nil { throw ValidationError("--plane must be axial, coronal or sagittal") }
        if let ganLoss, GANLoss(rawValue: ganLoss) == nil { throw ValidationError("--gan-loss must be lsgan or vanilla") }
        if let residualBlocks, residualBlocks < 0 { throw ValidationError("--residual-blocks must be 0 or more") }
        if let poolSize, poolSize < 0 { throw ValidationError("--pool-size must be 0 or more") }
        if let epochs, epochs < 0 { throw ValidationError("--epochs must be 0 or more") }
        if let decayEpochs, decayEpochs < 0 { throw ValidationError("--decay-epochs must be 0 or more") }
        if iterations != nil, epochs != nil || decayEpochs != nil {
            throw ValidationError("give either --iterations or --epochs/--decay-epochs")
        }
        if let spacing, !PreprocessingConfiguration.targetSpacingRange.contains(spacing) {
            let range = PreprocessingConfiguration.targetSpacingRange
            throw ValidationError(String(format: "--spacing must be between %g and %g mm, not %g", range.lowerBound, range.upperBound, spacing))
        }
        for (value, name) in [(lambdaA, "lambda-a"), (lambdaB, "lambda-b"), (lambdaIdentity, "lambda-identity"),
                              (lambdaStructure, "lambda-structure")] {
            if let value, !(value.isFinite && value >= 0) { throw ValidationError("--\(name) must be a number ≥ 0") }
        }
        if let lr, !(lr.isFinite && lr > 0) { throw ValidationError("--lr must be a positive number") }
        if let beta1, !(beta1 >= 0 && beta1 < 1) { throw ValidationError("--beta1 must be in [0, 1)") }
        if (validationMR == nil) != (validationCT == nil) { throw ValidationError("--val-mr and --val-ct go together") }
    }

    /// The run's configuration: the stored one (or the reference defaults for a new run) with the options given.
    /// A new run starts from `--preset` (read from the MR folder's headers), else from the reference defaults.
    func configuration(stored: TrainingConfiguration?) throws -> TrainingConfiguration {
        var c: TrainingConfiguration
        if let stored {
            c = stored
            if let preset, preset != stored.preset {
                throw ValidationError("the run in \(runFolder.runDirectory) was started "
                    + (stored.preset.map { "with --preset \($0.rawValue)" } ?? "without a preset")
                    + ", not --preset \(preset.rawValue); use another --run folder")
            }
        } else if let preset, let mr {
            c = try preset.configuration(mrFiles: TrainingSession.volumeFiles(in: URL(fileURLWithPath: mr), what: "MR"))
        } else {
            c = TrainingConfiguration()
        }
        if let sliceSize { c.preprocessing.sliceSize = sliceSize }
        if let plane, let p = SlicePlane(rawValue: plane) { c.preprocessing.plane = p }
        if let context { c.preprocessing.contextSlices = context }
        if let spacing { c.preprocessing.targetSpacing = spacing }
        if let ctOutsideBody { c.preprocessing.ctOutsideBody = ctOutsideBody }
        if let ngf { c.model.generator.ngf = ngf }
        if let ndf { c.model.discriminator.ndf = ndf }
        if let residualBlocks { c.model.generator.residualBlocks = residualBlocks }
        if let discriminatorLayers { c.model.discriminator.layers = discriminatorLayers }
        if let ganLoss, let g = GANLoss(rawValue: ganLoss) { c.model.ganLoss = g }
        if let lambdaA { c.model.lambdaA = lambdaA }
        if let lambdaB { c.model.lambdaB = lambdaB }
        if let lambdaIdentity { c.model.lambdaIdentity = lambdaIdentity }
        if let lambdaStructure { c.model.lambdaStructure = lambdaStructure }
        if let backwardCycle { c.model.backwardCycle = backwardCycle == .cycle ? nil : backwardCycle }
        if let lr { c.model.learningRate = lr }
        if let beta1 { c.model.beta1 = beta1 }
        if let poolSize { c.model.poolSize = poolSize }
        if let batchSize { c.batchSize = batchSize == 1 ? nil : batchSize }
        c.length = c.length.overridden(iterations: iterations, epochs: epochs, decayEpochs: decayEpochs)
        if let seed { c.seed = seed }
        if augment { c.augment = true }
        if let cropSize {
            c.cropSize = cropSize
        } else if let crop = c.cropSize, crop > c.preprocessing.sliceSize {
            // A preset's training windows never exceed an explicitly smaller --slice-size.
            c.cropSize = c.preprocessing.sliceSize
        }
        func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        if let mr { c.options.mrDirectory = absolute(mr) }
        if let ct { c.options.ctDirectory = absolute(ct) }
        if let pairedMR { c.options.pairedMRDirectory = absolute(pairedMR) }
        if let pairedCT { c.options.pairedCTDirectory = absolute(pairedCT) }
        // Semi-supervised: the supervision's options (checked with the pair folders in TrainingConfiguration.validate).
        if pairedMR != nil || pairedCT != nil || lambdaSupervised != nil || l1InBody {
            var supervision = c.model.supervised ?? CycleGANSupervision()
            if let lambdaSupervised { supervision.lambda = lambdaSupervised }
            if l1InBody { supervision.inBody = true }
            c.model.supervised = supervision
        }
        if let validationMR { c.options.validationMRDirectory = absolute(validationMR) }
        if let validationCT { c.options.validationCTDirectory = absolute(validationCT) }
        if let checkpointEvery = session.checkpointEvery { c.options.checkpointEvery = checkpointEvery }
        if let sampleEvery = session.sampleEvery { c.options.sampleEvery = sampleEvery }
        if let validateEvery { c.options.validateEvery = validateEvery }
        if let keepCheckpoints = session.keepCheckpoints { c.options.keepCheckpoints = keepCheckpoints }
        c.synchroniseChannels()
        return c
    }

    func run() throws {
        if paired || PairedRunConfiguration.isPairedRun(runFolder.url) {
            try runPaired()
            return
        }
        var standardError = StandardErrorStream()
        let stop = session.start()
        let parallel: DataParallelSession?
        do { parallel = try session.dataParallel() } catch {
            print("mr2ct: \(error)", to: &standardError)
            throw ExitCode.failure
        }
        // In a data-parallel job only rank 0 talks (and writes); the others train silently.
        let isRoot = parallel?.isRoot ?? true
        stop.announces = isRoot
        let runDirectory = runFolder.runDirectory, quiet = session.quiet || !isRoot
        let outcome: LoopOutcome
        do {
            let stored = try TrainingSession.storedConfiguration(runDirectory: runFolder.url)
            if stored == nil, runFolder.resume {
                throw TrainingError(path: runDirectory, reason: "no training run to resume here (no config.json)")
            }
            if stored == nil, mr == nil || ct == nil { throw ValidationError("a new run needs --mr and --ct") }
            var configuration = try configuration(stored: stored)
            configuration.options.ranks = parallel.map { $0.communicator.size }
            do { try configuration.validate() } catch let error as TrainingError { throw ValidationError(error.reason) }
            let training = try TrainingSession(runDirectory: runFolder.url, configuration: configuration,
                                               requireExisting: runFolder.resume, parallel: parallel) { message in
                if isRoot { print("mr2ct: \(message)", to: &standardError) }
            }
            training.gan.setPrecision(precision)
            let gan = training.gan
            for network in gan.networks { network.setConvolutionAlgorithm(convolution) }
            let total = training.schedule.totalIterations
            let (progress, lead) = session.progress(label: "train", total: total, completed: training.iteration, silent: !isRoot)
            training.onMessage = { message in if isRoot { print("\(lead)mr2ct: \(message)", to: &standardError) } }
            training.onProgress = { p in
                let l = p.losses
                progress.update(completed: p.iteration, detail: String(
                    format: "epoch %d/%d lr %.1e G %.3f/%.3f cyc %.3f/%.3f D %.3f/%.3f",
                    p.epoch, p.epochs, p.learningRate, l.gA, l.gB, l.cycleA, l.cycleB, l.dA, l.dB)
                    + (l.supervised.map { String(format: " sup %.3f", $0) } ?? ""))
            }
            if !quiet {
                let c = training.configuration
                let length = if case .epochs = c.length { "\(c.length) = \(total) iterations" } else { "\(total) iterations" }
                let semi = c.model.supervised.map { s in
                    ", semi-supervised: \(c.data.pairedMRFiles?.count ?? 0) registered pairs (\(c.data.pairedSlices ?? 0) slices), "
                        + "λ_sup \(s.lambda)" + (s.inBody ? " inside the body" : "")
                } ?? ""
                print("mr2ct: training \(length) (epoch: \(c.data.epochLength) slices from \(training.usedVolumes.mr) MR and "
                      + "\(training.usedVolumes.ct) CT volumes\(semi)) in \(training.runFolder.url.path)", to: &standardError)
            }
            if isRoot, let parallel {
                let batch = training.configuration.slicesPerIteration, ranks = parallel.communicator.size
                print("mr2ct: data-parallel on \(ranks) ranks × batch \(batch): effective batch \(ranks * batch) slices per iteration",
                      to: &standardError)
                if let previous = stored?.options.ranks ?? (stored == nil ? nil : 1), previous != ranks {
                    print("mr2ct: the run's previous session ran on \(previous) rank\(previous == 1 ? "" : "s") (effective batch "
                          + "\(previous * batch)); from iteration \(training.iteration) on each iteration trains on \(ranks * batch) slices",
                          to: &standardError)
                }
            } else if parallel == nil, let stored, let previous = stored.options.ranks, previous > 1,
                      training.iteration < training.schedule.totalIterations {
                let batch = training.configuration.slicesPerIteration
                print("mr2ct: the run's previous session ran on \(previous) ranks (effective batch \(previous * batch)); this one "
                      + "trains on one process, \(batch) slice\(batch == 1 ? "" : "s") per iteration", to: &standardError)
            }
            outcome = try training.run(stop: stop)
            progress.finish()
        } catch {
            throw trainingFailure(error, parallel: parallel)
        }
        try session.finish(outcome, model: "\(runDirectory)/checkpoints/latest/G_A.safetensors",
                           resume: "mr2ct train --run \(runDirectory) --resume", parallel: parallel)
    }
}

extension TrainingPreset: ExpressibleByArgument {}
extension PairedGenerator: ExpressibleByArgument {}
/// `--ct-map`: the CT intensity maps of `CTIntensityMapping` by name.
enum CTMapOption: String, ExpressibleByArgument, CaseIterable {
    case softTissue = "soft-tissue"
    case window
    var mapping: CTIntensityMapping { self == .window ? .window : .softTissue }
}
extension NormalizationKind: ExpressibleByArgument {}
extension OutsideBody: ExpressibleByArgument {}
extension BackwardCycle: ExpressibleByArgument {}
