import ArgumentParser
import DataParallel
import DCGAN
import Foundation
import MR2CTSupport
import NeuralNetwork
import Reporting
import Training

extension GANFamily: ExpressibleByArgument {}

/// `mr2ct gan`: DC-GAN and conditional-GAN training and sampling on 2-D patches.
struct GANCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "Train DC-GAN or conditional-GAN patch generators and sample images from them.",
        subcommands: [GANTrainCommand.self, GANSampleCommand.self, GANEvaluateCommand.self]
    )
}

/// `mr2ct gan train`.
struct GANTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a DC-GAN (noise → patch) or a conditional GAN (noise + class → patch) on 2-D patches.",
        discussion: """
        Defaults are PyTorch's examples/dcgan (Radford et al. 2015): 64×64 images, nz 100, ngf = ndf = 64, batch 64, Adam 2e-4 with β1 0.5, BCE, 25 epochs at a constant rate. The conditional GAN (Mirza & Osindero 2014) adds a learned class embedding concatenated to z and a learned class map as extra discriminator channels.

        Patches: --images DIR holds PNG (8-bit gray or RGB) or 2-D NIfTI images (side × side × channels) of --image-size; for cgan one sub-folder per class. With --labels DIR, --images holds NIfTI volumes and --labels label maps of the same names: axial patches are cut centred on labelled voxels (at most --patches-per-class per label value), and the label is the class for cgan.

        The run folder holds config.json, log.ndjson (kinds train, validation, checkpoint), samples/iter_N.png, report.html and checkpoints/{iter_N,latest}/ (G.safetensors is a complete model for `mr2ct gan sample`). Running again on the same --run (or with --resume) continues exactly where it stopped; options given must agree with the run. SIGINT/SIGTERM finish the current iteration, save a checkpoint and exit with 130/143; a second signal exits at once. Exit status: 0 done, 1 failure, 64 usage, 130/143 stopped (resumable).
        """
    )

    @Option(name: .long, help: "GAN family: dcgan or cgan. (default: dcgan)")
    var family: GANFamily?
    @Option(name: .long, help: ArgumentHelp("Folder of training images (PNG or NIfTI), or of NIfTI volumes with --labels.", valueName: "DIR"))
    var images: String?
    @Option(name: .long, help: ArgumentHelp("Folder of label maps named as the --images volumes: patches are cut at labelled voxels.", valueName: "DIR"))
    var labels: String?
    @OptionGroup var runFolder: RunFolderOptions

    @Option(name: .long, help: "Image side, a multiple of 16. (default: 64)")
    var imageSize: Int?
    @Option(name: .long, help: "Image channels (1 gray, 3 RGB, or a NIfTI image's third dimension). (default: 1)")
    var channels: Int?
    @Option(name: .long, help: "Length of the noise vector z. (default: 100)")
    var nz: Int?
    @Option(name: .long, help: "Generator filters. (default: 64)")
    var ngf: Int?
    @Option(name: .long, help: "Discriminator filters. (default: 64)")
    var ndf: Int?
    @Option(name: .long, help: "Batch size (at least 2, for BatchNorm). (default: 64)")
    var batchSize: Int?
    @Option(name: .long, help: "Adam learning rate. (default: 0.0002)")
    var lr: Float?
    @Option(name: .long, help: "Adam β1. (default: 0.5)")
    var beta1: Float?
    @Option(name: .long, help: "cgan: length of the generator's class embedding. (default: 10)")
    var embeddingDimension: Int?
    @Option(name: .long, help: "cgan: class-map channels added to the discriminator's input. (default: 1)")
    var labelChannels: Int?
    @Option(name: .long, help: ArgumentHelp("Patch units mapped to [-1, 1], e.g. --intensity-range=-1024,3000 for CT in HU (with = when LO is negative). (default: 0,255 for PNG; the patches' minimum and maximum for NIfTI)", valueName: "LO,HI"))
    var intensityRange: String?
    @Option(name: .long, help: "With --labels: at most this many patches per label value. (default: 256)")
    var patchesPerClass: Int?

    @Option(name: .long, help: "Epochs (an epoch: patches / batch size iterations). (default: 25)")
    var epochs: Int?
    @Option(name: .long, help: "Train this many iterations instead of --epochs.")
    var iterations: Int?
    @Option(name: .long, help: "Random seed (weights, noise, batch order, patch positions). (default: 0)")
    var seed: UInt64?
    @OptionGroup var session: TrainingSessionOptions

    func parsedIntensity() throws -> IntensityRange? {
        guard let intensityRange else { return nil }
        let parts = intensityRange.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1], lo.isFinite, hi.isFinite, hi > lo else {
            throw ValidationError("--intensity-range must be LO,HI with LO < HI")
        }
        return IntensityRange(lower: lo, upper: hi)
    }

    func validate() throws {
        for (value, name) in [(iterations, "iterations"), (epochs, "epochs"), (patchesPerClass, "patches-per-class")] {
            if let value, value < 1 { throw ValidationError("--\(name) must be at least 1") }
        }
        if iterations != nil, epochs != nil { throw ValidationError("give either --iterations or --epochs") }
        _ = try parsedIntensity()
        // The model options are checked in one place, GANConfiguration.validate().
        var probe = GANConfiguration()
        apply(to: &probe)
        probe.classNames = ["0", "1"]
        do { try probe.validate() } catch { throw ValidationError("\(error)") }
    }

    func apply(to c: inout GANConfiguration) {
        if let family { c.family = family }
        if let imageSize { c.imageSize = imageSize }
        if let channels { c.channels = channels }
        if let nz { c.nz = nz }
        if let ngf { c.ngf = ngf }
        if let ndf { c.ndf = ndf }
        if let batchSize { c.batchSize = batchSize }
        if let lr { c.learningRate = lr }
        if let beta1 { c.beta1 = beta1 }
        if let embeddingDimension { c.embeddingDimension = embeddingDimension }
        if let labelChannels { c.labelChannels = labelChannels }
        if let seed { c.seed = seed }
    }

    func run() throws {
        var standardError = StandardErrorStream()
        // Every rank would train its own copy into one folder: refused, one line per rank.
        if Communicator.isLaunchedInParallel {
            print("mr2ct: \(runFolder.runDirectory): gan train is not data-parallel; run it as one process, without mpirun or srun",
                  to: &standardError)
            throw ExitCode.failure
        }
        let stop = session.start()
        let url = runFolder.url, runDirectory = runFolder.runDirectory, resume = runFolder.resume, quiet = session.quiet
        let outcome: LoopOutcome
        do {
            let stored = try GANRun.storedConfiguration(url)
            func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
            guard let imagesPath = images.map(absolute) ?? stored?.source.images else {
                throw ValidationError(resume ? "no GAN run in \(runDirectory) to resume" : "a new run needs --images")
            }
            var c = stored ?? GANRunConfiguration(source: PatchSource(images: imagesPath))
            c.source.images = imagesPath
            if let labels { c.source.labels = absolute(labels) }
            if let patchesPerClass { c.source.patchesPerClass = patchesPerClass }
            apply(to: &c.gan)
            if let iterations { c.iterations = iterations }
            if let epochs { c.epochs = epochs; c.iterations = nil }
            session.apply(to: &c.options)
            let training = try GANRun(directory: url, configuration: c, intensity: try parsedIntensity(), requireExisting: resume) { message in
                print("mr2ct: \(message)", to: &standardError)
            }
            let total = training.loop.schedule.totalIterations
            let (progress, lead) = session.progress(label: "gan", total: total, completed: training.loop.iteration)
            training.loop.onMessage = { print("\(lead)mr2ct: \($0)", to: &standardError) }
            training.loop.callbacks.append(ProgressCallback { event in
                let v = Dictionary(event.losses.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
                progress.update(completed: event.iteration, detail: String(
                    format: "epoch %d Loss_D %.3f Loss_G %.3f D(x) %.3f D(G(z)) %.3f/%.3f", event.epoch,
                    v["Loss_D"] ?? .nan, v["Loss_G"] ?? .nan, v["D_x"] ?? .nan, v["D_G_z1"] ?? .nan, v["D_G_z2"] ?? .nan))
            })
            if !quiet {
                let g = training.configuration.gan
                print("mr2ct: training a \(g.family.rawValue) for \(total) iterations on \(training.data.dataset.count) patches "
                      + "of \(g.channels)×\(g.imageSize)×\(g.imageSize)"
                      + (g.family == .cgan ? " in \(g.classNames.count) classes (\(g.classNames.joined(separator: ", ")))" : "")
                      + " in \(training.run.url.path)", to: &standardError)
            }
            outcome = try training.loop.run(stop: stop)
            progress.finish()
        } catch {
            throw trainingFailure(error)
        }
        try session.finish(outcome, model: "\(runDirectory)/checkpoints/latest/G.safetensors",
                           resume: "mr2ct gan train --run \(runDirectory) --resume")
    }
}

/// `mr2ct gan sample`.
struct GANSampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Generate images with a trained (or converted) GAN generator.",
        discussion: """
        Writes DIR/sample_0000.png … (the generator's [-1, 1] output as 8-bit gray, RGB for 3 channels) and DIR/images.safetensors with the tensor images (N × C × H × W, in the patch units of the model's intensity map; with the raw generator output for a model without one, i.e. the range -1,1) and, for cgan, labels. BatchNorm uses its running statistics (eval mode). The noise is N(0, 1) from --seed, or the tensor z (N × nz × 1 × 1) of --noise, e.g. the z PyTorch used.
        """
    )

    @Option(name: .long, help: ArgumentHelp("A generator file (checkpoints/latest/G.safetensors, or converted from PyTorch), or a run folder.", valueName: "FILE"))
    var model: String
    @Option(name: .long, help: "Number of images (with --noise: the noise tensor's N). (default: 64)")
    var count: Int?
    @Option(name: .long, help: "cgan: the class to generate (a label value or class folder name). (default: the first class)")
    var label: String?
    @Option(name: .long, help: "Seed of the noise. (default: 0)")
    var seed: UInt64 = 0
    @Option(name: .long, help: ArgumentHelp("Safetensors file with the noise tensor z (N × nz × 1 × 1).", valueName: "Z.safetensors"))
    var noise: String?
    @Option(name: .shortAndLong, help: ArgumentHelp("Output folder.", valueName: "DIR"))
    var output: String
    @Flag(name: .long, help: "Replace existing sample files.")
    var overwrite = false

    func validate() throws {
        if let count, count < 1 || count > 100_000 { throw ValidationError("--count must be in 1…100000") }
    }

    func run() throws {
        var standardError = StandardErrorStream()
        do {
            let url = GANModelFile.generatorFile(model)
            let (configuration, generator) = try GANModelFile.load(url)
            var classIndex: Int?
            if configuration.family == .cgan {
                if let label {
                    guard let index = configuration.classNames.firstIndex(of: label) else {
                        throw GANModelFile.LoadError(path: url.path, reason: "no class \"\(label)\" (classes: \(configuration.classNames.joined(separator: ", ")))")
                    }
                    classIndex = index
                } else {
                    classIndex = 0
                }
            } else if label != nil {
                throw ValidationError("--label needs a conditional (cgan) model")
            }
            let z: Tensor
            if let noise {
                z = try GANSampler.readNoise(URL(fileURLWithPath: noise), nz: configuration.nz)
                if let count, count != z.shape[0] { throw ValidationError("--count \(count) differs from the \(z.shape[0]) noise vectors of --noise") }
            } else {
                z = GANSampler.seededNoise(count: count ?? 64, nz: configuration.nz, seed: seed)
            }
            try GANSampler.write(generator: generator, configuration: configuration, noise: z, classIndex: classIndex,
                                 to: URL(fileURLWithPath: output), overwrite: overwrite)
            print("mr2ct: \(z.shape[0]) images of \(configuration.channels)×\(configuration.imageSize)×\(configuration.imageSize) in \(output)",
                  to: &standardError)
        } catch {
            throw trainingFailure(error)
        }
    }
}

/// `mr2ct gan evaluate`.
struct GANEvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Compare a generator's images with held-out real patches: Wasserstein-1 of the intensities; for cgan per class and GAN-test / GAN-train accuracies.",
        discussion: """
        The real patches are read as for training (--images, --labels, --patches-per-class) with the model's own size, channels and intensity map (values outside it are clamped); give patches the model did not train on. The generator makes --count images per class (default: as many as the real patches of that class) from seeded noise. Prints one JSON line: w1 (Wasserstein-1 between the pooled pixel intensities, in patch units, e.g. HU), and for cgan per class w1 and counts, gan_test (a nearest-class-mean classifier fitted on the real patches, accuracy on the generated ones), gan_train (fitted on the generated, accuracy on the real), real_on_real (fitted and scored on the real: the classifier's ceiling) and chance (1 / classes). GAN-test and GAN-train after Shmelkov et al. 2018, with a nearest-mean classifier instead of their CNN.
        """
    )

    @Option(name: .long, help: ArgumentHelp("A generator file, or a run folder.", valueName: "FILE"))
    var model: String
    @Option(name: .long, help: ArgumentHelp("Held-out real images (as gan train --images).", valueName: "DIR"))
    var images: String
    @Option(name: .long, help: ArgumentHelp("Label maps for --images volumes (as gan train --labels).", valueName: "DIR"))
    var labels: String?
    @Option(name: .long, help: "With --labels: at most this many real patches per label value. (default: 256)")
    var patchesPerClass: Int = 256
    @Option(name: .long, help: "Generated images per class. (default: the real patch count of the class)")
    var count: Int?
    @Option(name: .long, help: "Seed of the noise and of the patch positions. (default: 1)")
    var seed: UInt64 = 1

    func validate() throws {
        if let count, count < 1 || count > 100_000 { throw ValidationError("--count must be in 1…100000") }
        if patchesPerClass < 1 { throw ValidationError("--patches-per-class must be at least 1") }
    }

    func run() throws {
        var standardError = StandardErrorStream()
        do {
            let url = GANModelFile.generatorFile(model)
            let (configuration, generator) = try GANModelFile.load(url)
            let source = PatchSource(images: images, labels: labels, patchesPerClass: patchesPerClass)
            let real = try PatchDataset(source: source, side: configuration.imageSize, channels: configuration.channels,
                                        conditional: configuration.family == .cgan, intensity: configuration.intensity, seed: seed)
            for skip in real.skipped { print("mr2ct: skipped \(skip.path): \(skip.reason)", to: &standardError) }
            if configuration.family == .cgan, real.classNames != configuration.classNames {
                throw GANModelFile.LoadError(path: images, reason: "classes \(real.classNames.joined(separator: ", ")) differ from the model's \(configuration.classNames.joined(separator: ", "))")
            }
            let r = GANEvaluation.evaluate(generator: generator, configuration: configuration, real: real, perClass: count, seed: seed)
            func number(_ x: Double?) -> String { x.map { $0.isFinite ? JSONLiteral.number($0) : "null" } ?? "null" }
            var fields = ["\"model\":\(JSONLiteral.string(url.path))", "\"family\":\(JSONLiteral.string(configuration.family.rawValue))",
                          "\"real\":\(real.count)", "\"w1\":\(number(r.wasserstein1))",
                          "\"units\":\(JSONLiteral.string("\(configuration.intensity.lower)…\(configuration.intensity.upper)"))"]
            if configuration.family == .cgan {
                let classes = r.classes.map { c in
                    "{\"class\":\(JSONLiteral.string(c.name)),\"real\":\(c.real),\"generated\":\(c.generated),\"w1\":\(number(c.wasserstein1))}"
                }
                fields += ["\"classes\":[\(classes.joined(separator: ","))]", "\"gan_test\":\(number(r.ganTest))",
                           "\"gan_train\":\(number(r.ganTrain))", "\"real_on_real\":\(number(r.realOnReal))",
                           "\"chance\":\(number(1 / Double(configuration.classCount)))"]
            }
            print("{" + fields.joined(separator: ",") + "}")
        } catch {
            print("mr2ct: \(error)", to: &standardError)
            throw ExitCode.failure
        }
    }
}
