import Foundation
import NeuralNetwork
import MR2CTSupport
#if canImport(Glibc)
import Glibc
import Networks
#endif

/// One benchmark configuration: a CycleGAN at `size`² with one channel, batch 1, random data.
public struct BenchmarkConfiguration: Codable, Sendable, Hashable {
    public var size: Int
    public var ngf: Int
    public var ndf: Int
    public var blocks: Int
    public var iterations: Int
    public var inferenceRuns: Int
    /// How the networks' convolutions are computed (`.automatic`: oneDNN or MR2CT's kernels per pass and shape).
    public var convolution: ConvolutionAlgorithm
    /// The convolutions' arithmetic (`.bf16`: mixed-precision training and bf16 inference).
    public var precision: Precision = .f32

    public init(size: Int, ngf: Int, ndf: Int, blocks: Int, iterations: Int = 3, inferenceRuns: Int = 10,
                convolution: ConvolutionAlgorithm = .automatic, precision: Precision = .f32) {
        self.size = size
        self.ngf = ngf
        self.ndf = ndf
        self.blocks = blocks
        self.iterations = iterations
        self.inferenceRuns = inferenceRuns
        self.convolution = convolution
        self.precision = precision
    }

    /// The two configurations of issue 4: 128², ngf 32, ndf 32, 6 blocks; 256², ngf 64, ndf 64, 9 blocks.
    public static let standard = [
        BenchmarkConfiguration(size: 128, ngf: 32, ndf: 32, blocks: 6),
        BenchmarkConfiguration(size: 256, ngf: 64, ndf: 64, blocks: 9),
    ]
}

/// What one benchmark run measured (keys as the PyTorch peer prints them).
public struct BenchmarkResult: Codable, Sendable {
    public var engine: String
    public var size: Int
    public var ngf: Int
    public var ndf: Int
    public var blocks: Int
    public var threads: Int
    public var convolution: String
    /// "f32", "bf16-onednn" (native bf16 kernels) or "bf16-emulated" (bf16 numerics on float32 kernels).
    public var precision: String
    /// OpenBLAS's kernel set (`BLAS.kernels`), e.g. "Cooperlake".
    public var blasKernels: String
    public var trainSecondsPerIteration: Double
    public var inferSecondsPerSlice: Double
    /// Convolution FLOPs (multiply + add) of one generator forward pass.
    public var generatorForwardGFLOP: Double
    public var inferGFLOPSPerSecond: Double
    /// Nominal convolution FLOPs of one training iteration: 6 generator applications × (forward + 2 backward
    /// GEMMs) + 6 discriminator forward passes + 6 discriminator backward GEMMs.
    public var trainGFLOP: Double
    public var trainGFLOPSPerSecond: Double
    public var peakRSSMegabytes: Int
    /// CPU time (user + system, all threads) per training iteration: the work done, less sensitive than wall
    /// time to other processes competing for the cores.
    public var trainCPUSecondsPerIteration: Double
    public var inferCPUSecondsPerSlice: Double
    /// What the training model holds after the timed steps, by part (`CycleGANModel.memoryProfile`), in MB; the
    /// rest of `peak_rss_mb` is the process (code, libraries, allocator) and oneDNN's per-thread buffers.
    public var memoryProfileMegabytes: [String: Double]?

    enum CodingKeys: String, CodingKey {
        case engine, size, ngf, ndf, blocks, threads, convolution, precision
        case blasKernels = "blas_kernels"
        case trainSecondsPerIteration = "train_s_per_iter"
        case inferSecondsPerSlice = "infer_s_per_slice"
        case generatorForwardGFLOP = "gen_fwd_gflop"
        case inferGFLOPSPerSecond = "infer_gflops_per_s"
        case trainGFLOP = "train_gflop"
        case trainGFLOPSPerSecond = "train_gflops_per_s"
        case peakRSSMegabytes = "peak_rss_mb"
        case trainCPUSecondsPerIteration = "train_cpu_s_per_iter"
        case inferCPUSecondsPerSlice = "infer_cpu_s_per_slice"
        case memoryProfileMegabytes = "memory_mb"
    }

    /// One JSON line.
    public var jsonLine: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// Times one full CycleGAN training iteration (`CycleGAN.trainStep`) and one generator inference slice.
public enum CycleGANBenchmark {
    public static func run(_ b: BenchmarkConfiguration, threads: Int) -> BenchmarkResult {
        ComputeThreads.set(threads)
        let configuration = CycleGANConfiguration(
            generator: GeneratorConfiguration(ngf: b.ngf, residualBlocks: b.blocks),
            discriminator: DiscriminatorConfiguration(ndf: b.ndf))
        let model = CycleGANModel(configuration: configuration, seed: 0)
        for network in model.networks {
            network.setConvolutionAlgorithm(b.convolution)
        }
        model.setPrecision(b.precision)
        var random = SeededRandom(seed: 1)
        func image() -> Tensor {
            let t = Tensor(shape: [1, 1, b.size, b.size])
            for i in 0..<t.count { t.data[i] = random.nextUnitFloat() * 2 - 1 }
            return t
        }
        let inputs = (0..<4).map { _ in (image(), image()) }
        _ = model.trainStep(realA: inputs[0].0, realB: inputs[0].1)   // warm-up: buffers reach their sizes
        let c0 = cpuSeconds()
        let t0 = monotonicSeconds()
        for i in 0..<max(1, b.iterations) {
            let (a, bb) = inputs[(i + 1) % inputs.count]
            _ = model.trainStep(realA: a, realB: bb)
        }
        let train = (monotonicSeconds() - t0) / Double(max(1, b.iterations))
        let trainCPU = (cpuSeconds() - c0) / Double(max(1, b.iterations))
        var memory: [String: Double] = [:]
        for (part, bytes) in model.memoryProfile { memory[part.rawValue] = rounded(Double(bytes) / 1_048_576, 1) }

        // As the training loop does before it validates: the step's records and workspaces are given back before
        // inference runs (the peak RSS is then that of training or of inference, not of both at once).
        model.releaseStepBuffers()
        let x = inputs[0].0
        _ = model.gA.infer(x)
        let c1 = cpuSeconds()
        let t1 = monotonicSeconds()
        for _ in 0..<max(1, b.inferenceRuns) { _ = model.gA.infer(x) }
        let infer = (monotonicSeconds() - t1) / Double(max(1, b.inferenceRuns))
        let inferCPU = (cpuSeconds() - c1) / Double(max(1, b.inferenceRuns))

        let gFlop = FLOPCount.forward(model.gA.network, input: [1, 1, b.size, b.size]) / 1e9
        let dFlop = FLOPCount.forward(model.dA.network, input: [1, 1, b.size, b.size]) / 1e9
        let trainFlop = 6 * 3 * gFlop + 6 * dFlop + 6 * dFlop
        return BenchmarkResult(
            engine: "mr2ct", size: b.size, ngf: b.ngf, ndf: b.ndf, blocks: b.blocks, threads: threads,
            convolution: b.convolution.rawValue, precision: b.precision.implementation, blasKernels: BLAS.kernels,
            trainSecondsPerIteration: rounded(train, 6), inferSecondsPerSlice: rounded(infer, 6),
            generatorForwardGFLOP: rounded(gFlop, 6), inferGFLOPSPerSecond: rounded(gFlop / infer, 1),
            trainGFLOP: rounded(trainFlop, 3), trainGFLOPSPerSecond: rounded(trainFlop / train, 1),
            peakRSSMegabytes: peakResidentMegabytes(),
            trainCPUSecondsPerIteration: rounded(trainCPU, 6), inferCPUSecondsPerSlice: rounded(inferCPU, 6),
            memoryProfileMegabytes: memory)
    }

    static func rounded(_ x: Double, _ digits: Int = 4) -> Double {
        let f = Foundation.pow(10.0, Double(digits))
        return (x * f).rounded() / f
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
    }

    /// Peak resident set size of this process (getrusage ru_maxrss, kilobytes on Linux).
    static func peakResidentMegabytes() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Int(usage.ru_maxrss) / 1024
    }
}

/// Convolution FLOPs (2 per multiply-add) of a forward pass, counted as the PyTorch peer counts them.
public enum FLOPCount {
    public static func forward(_ layer: Layer, input: [Int]) -> Double {
        switch layer {
        case let s as Sequential:
            var shape = input, total = 0.0
            for l in s.layers { total += forward(l, input: shape); shape = l.outputShape(for: shape) }
            return total
        case let r as ResidualBlock:
            return forward(r.block, input: input)
        case let c as Conv2d:
            let o = c.outputShape(for: input)
            return 2 * Double(c.kernelSize * c.kernelSize * c.inputChannels) * Double(o.reduce(1, *))
        case let t as ConvTranspose2d:
            return 2 * Double(t.kernelSize * t.kernelSize * t.outputChannels) * Double(input.reduce(1, *))
        default:
            return 0
        }
    }
}

extension CycleGANBenchmark {
    /// `ConvolutionLayerBenchmark` rows for the generator and the discriminator of a configuration.
    public static func layers(size: Int, ngf: Int, ndf: Int, blocks: Int, threads: Int) -> [ConvolutionLayerBenchmark.Row] {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: ngf, residualBlocks: blocks))
        let d = NLayerDiscriminator(DiscriminatorConfiguration(ndf: ndf))
        g.initializeWeights(seed: 1)
        d.initializeWeights(seed: 2)
        return ConvolutionLayerBenchmark.run(g, name: "G", input: [1, 1, size, size], threads: threads)
            + ConvolutionLayerBenchmark.run(d, name: "D", input: [1, 1, size, size], threads: threads)
    }
}
