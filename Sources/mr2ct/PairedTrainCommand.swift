import SyntheticCT
import Networks
import ArgumentParser
import CycleGAN
import DataParallel
import Foundation
import MR2CTSupport
import NeuralNetwork
import Pix2Pix
import Preprocessing
import Reporting
import Training

/// `mr2ct train --paired`: the argument layer of paired (pix2pix) training; the run is `Pix2Pix.PairedRun`.
extension TrainCommand {
    /// Options of one kind of training given with the other.
    func validatePairedOptions() throws {
        let pairedOnly: [(Bool, String)] = [(generator != nil, "--generator"), (lambdaL1 != nil, "--lambda-l1"),
                                            (lambdaGAN != nil, "--lambda-gan"),
                                            (norm != nil, "--norm"), (noDropout, "--no-dropout"),
                                            (ctMap != nil, "--ct-map")]
        let unpairedOnly: [(Bool, String)] = [(lambdaA != nil, "--lambda-a"), (lambdaB != nil, "--lambda-b"),
                                              (lambdaIdentity != nil, "--lambda-identity"),
                                              (lambdaStructure != nil, "--lambda-structure"), (poolSize != nil, "--pool-size"),
                                              (backwardCycle != nil, "--backward-cycle"),
                                              (preset != nil, "--preset")]
        if paired, let (_, name) = unpairedOnly.first(where: { $0.0 }) {
            throw ValidationError("\(name) is an unpaired (CycleGAN) option; it does not apply with --paired")
        }
        if !paired, let (_, name) = pairedOnly.first(where: { $0.0 }) {
            throw ValidationError("\(name) needs --paired")
        }
        // Semi-supervised training is CycleGAN training with pairs besides: its options do not go with --paired.
        let semiSupervised: [(Bool, String)] = [(pairedMR != nil, "--paired-mr"), (pairedCT != nil, "--paired-ct"),
                                                (lambdaSupervised != nil, "--lambda-supervised")]
        if paired, let (_, name) = semiSupervised.first(where: { $0.0 }) {
            throw ValidationError("\(name) is a semi-supervised (CycleGAN) option; it does not apply with --paired "
                                  + "(--paired trains pix2pix on the --mr/--ct pairs alone)")
        }
        if !paired, l1InBody, pairedMR == nil {
            throw ValidationError("--l1-in-body needs --paired, or --paired-mr and --paired-ct")
        }
        for (value, name) in [(lambdaL1, "lambda-l1"), (lambdaGAN, "lambda-gan")] {
            if let value, !(value.isFinite && value >= 0) { throw ValidationError("--\(name) must be a number ≥ 0") }
        }
    }

    /// The paired run's configuration: the stored one (or pix2pix's defaults for a new run) with the options given.
    func pairedConfiguration(stored: PairedRunConfiguration?) -> PairedRunConfiguration {
        var c = stored ?? PairedRunConfiguration()
        if let ctMap { c.preprocessing.ctMapping = ctMap.mapping }
        if let sliceSize { c.preprocessing.sliceSize = sliceSize }
        if let plane, let p = SlicePlane(rawValue: plane) { c.preprocessing.plane = p }
        if let context { c.preprocessing.contextSlices = context }
        if let spacing { c.preprocessing.targetSpacing = spacing }
        if let ctOutsideBody { c.preprocessing.ctOutsideBody = ctOutsideBody }
        if let generator {
            c.model.generator = generator
            if stored == nil { c.model.dropout = generator != .resnet }
        }
        if noDropout { c.model.dropout = false }
        if let norm { c.model.norm = norm }
        if let ngf { c.model.ngf = ngf }
        if let ndf { c.model.ndf = ndf }
        if let residualBlocks { c.model.residualBlocks = residualBlocks }
        if let discriminatorLayers { c.model.discriminatorLayers = discriminatorLayers }
        if let ganLoss, let g = GANLoss(rawValue: ganLoss) { c.model.ganLoss = g }
        if let lambdaL1 { c.model.lambdaL1 = lambdaL1 }
        if l1InBody { c.model.l1InBody = true }
        if let lambdaGAN { c.model.lambdaGAN = lambdaGAN }
        if let lr { c.model.learningRate = lr }
        if let beta1 { c.model.beta1 = beta1 }
        c.length = c.length.overridden(iterations: iterations, epochs: epochs, decayEpochs: decayEpochs)
        if let seed { c.seed = seed }
        if augment { c.augment = true }
        if let cropSize { c.cropSize = cropSize }
        if let batchSize { c.batchSize = batchSize == 1 ? nil : batchSize }
        func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        if let mr { c.options.mrDirectory = absolute(mr) }
        if let ct { c.options.ctDirectory = absolute(ct) }
        if let validationMR { c.options.validationMRDirectory = absolute(validationMR) }
        if let validationCT { c.options.validationCTDirectory = absolute(validationCT) }
        if let v = session.checkpointEvery { c.options.loop.checkpointEvery = v }
        if let v = session.sampleEvery { c.options.loop.sampleEvery = v }
        if let validateEvery { c.options.loop.validateEvery = validateEvery }
        if let v = session.keepCheckpoints { c.options.loop.keepCheckpoints = v }
        return c
    }

    func runPaired() throws {
        var standardError = StandardErrorStream()
        if let v = session.threads { ComputeThreads.set(v) }
        let runURL = URL(fileURLWithPath: runFolder.runDirectory)
        let stop = StopSignal()
        stop.installSignalHandlers()
        let parallel: DataParallelSession?
        do { parallel = try session.dataParallel() } catch {
            print("mr2ct: \(error)", to: &standardError)
            throw ExitCode.failure
        }
        let isRoot = parallel?.isRoot ?? true
        stop.announces = isRoot
        let outcome: LoopOutcome
        do {
            if !paired, let (_, name) = [(lambdaA != nil, "--lambda-a"), (poolSize != nil, "--pool-size"), (preset != nil, "--preset"),
                                         (pairedMR != nil, "--paired-mr"), (lambdaSupervised != nil, "--lambda-supervised")]
                .first(where: { $0.0 }) {
                throw ValidationError("\(runFolder.runDirectory) holds a paired run; \(name) does not apply to it")
            }
            let stored = try PairedRun.storedConfiguration(runURL)
            if stored == nil, runFolder.resume { throw RunError.noRun(path: runURL.standardizedFileURL.path) }
            if stored == nil, mr == nil || ct == nil { throw ValidationError("a new run needs --mr and --ct") }
            var configuration = pairedConfiguration(stored: stored)
            configuration.options.ranks = parallel.map { $0.communicator.size }
            do { try configuration.validate() } catch let error as PairedConfigurationError { throw ValidationError(error.reason) }
            let pairedRun = try PairedRun(directory: runURL, configuration: configuration, requireExisting: runFolder.resume,
                                          parallel: parallel) { message in
                if isRoot { print("mr2ct: \(message)", to: &standardError) }
            }
            let loop = pairedRun.loop
            let total = loop.schedule.totalIterations
            let (progress, lead) = session.progress(label: "train", total: total, completed: loop.iteration, silent: !isRoot)
            let say: (String) -> Void = { message in
                guard isRoot else { return }
                var e = StandardErrorStream()
                print("\(lead)mr2ct: \(message)", to: &e)
            }
            loop.onMessage = say
            let epochs = max(1, (total + max(1, pairedRun.data.epochLength) - 1) / max(1, pairedRun.data.epochLength))
            loop.callbacks.append(ProgressCallback { event in
                let detail = event.losses.map { "\($0.name) \(String(format: "%.3f", $0.value))" }.joined(separator: " ")
                progress.update(completed: event.iteration, detail: String(format: "epoch %d/%d lr %.1e ", event.epoch, epochs,
                                                                           event.learningRate) + detail)
            })
            loop.callbacks.append(MessageCallback(say))
            if isRoot, let parallel {
                let batch = pairedRun.configuration.batchSize ?? 1, ranks = parallel.communicator.size
                print("mr2ct: data-parallel on \(ranks) ranks × batch \(batch): effective batch \(ranks * batch) pairs per iteration",
                      to: &standardError)
            }
            if !session.quiet && isRoot {
                let c = pairedRun.configuration
                print("mr2ct: paired training, \(total) iterations (epoch: \(c.epochLength) slices from \(c.pairs.count) "
                      + "pairs), generator \(c.model.generator.rawValue)"
                      + (c.model.adversarial ? ", λ_L1 \(c.model.lambdaL1), λ_GAN \(c.model.lambdaGAN) (\(c.model.ganLoss.rawValue))"
                                             : ", pure L1 regression (λ_L1 \(c.model.lambdaL1), no discriminator)")
                      + " in \(pairedRun.run.url.path)", to: &standardError)
            }
            outcome = try loop.run(stop: stop)
            progress.finish()
        } catch {
            throw trainingFailure(error, parallel: parallel)
        }
        try session.finish(outcome, model: "\(runFolder.runDirectory)/checkpoints/latest/G.safetensors",
                           resume: "mr2ct train --run \(runFolder.runDirectory) --resume", parallel: parallel)
    }
}
