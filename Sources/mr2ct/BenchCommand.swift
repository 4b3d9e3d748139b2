import ArgumentParser
import CycleGAN
import SyntheticCT
import Foundation
import MR2CTSupport
import NeuralNetwork
import Conversion
import NIfTI

extension ConvolutionAlgorithm: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// `mr2ct bench`: times one CycleGAN training iteration and one inference slice on random data.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time one CycleGAN training iteration and one generator inference slice (random data, batch 1, 1 channel).",
        discussion: """
            Without --size it runs the two standard configurations (128², ngf 32, ndf 32, 6 blocks; 256², ngf 64, \
            ndf 64, 9 blocks). Prints one JSON line per configuration: train_s_per_iter, infer_s_per_slice, \
            gen_fwd_gflop, infer_gflops_per_s, train_gflops_per_s, peak_rss_mb (getrusage: the process's peak so far), \
            blas_kernels (OpenBLAS's kernel set, chosen for the CPU unless OPENBLAS_CORETYPE names one).
            """)

    @Option(help: "Slice size (square). (default: the two standard configurations)")
    var size: Int?
    @Option(help: "Generator filters in the first layer (with --size).")
    var ngf: Int = 64
    @Option(help: "Discriminator filters in the first layer (with --size).")
    var ndf: Int = 64
    @Option(help: "Residual blocks (with --size).")
    var blocks: Int = 9
    @Option(help: "Timed training iterations (after one warm-up).")
    var iterations: Int = 3
    @Option(help: "Timed inference slices (after one warm-up).")
    var inferenceRuns: Int = 10
    @Option(help: "Convolution algorithm of the networks: automatic (per pass and layer shape, oneDNN where it measured faster, else MR2CT's kernels, the residual blocks' backward passes by Winograd F(2×2,3×3) on the forward kernels), native (MR2CT's kernels only, the arithmetic of the engine before oneDNN: Winograd for the residual blocks' forward (F(4×4,3×3) for inference on images of 32² and more, F(2×2,3×3) below and in training) and backward-data, im2col for the weight gradients and elsewhere), im2col, winograd (F(2×2,3×3), all passes), winograd4 (F(4×4,3×3)) or onednn.")
    var convolution: ConvolutionAlgorithm = .automatic
    @Option(help: "Arithmetic of the convolutions: f32 (default, PyTorch's float32 numerics) or bf16 (bfloat16 operands, float32 accumulation, float32 master weights and optimiser state; native oneDNN kernels where the CPU has AVX512 BF16, else emulated — the JSON's precision key says which).")
    var precision: Precision = .f32
    @Flag(help: "Instead of the whole-network timing: every distinct convolution of the --size/--ngf/--ndf/--blocks generator and discriminator, pass by pass, on MR2CT's kernels and on oneDNN (float32; also bf16, onednn_bf16_ms, where the CPU has native bf16), at 1 and --threads threads (one JSON line each, milliseconds per call).")
    var layers = false
    @Option(help: "Threads (OpenBLAS and MR2CT's loops).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("memory"), help: ArgumentHelp("Instead of timing: the peak memory of info and (with --model) convert on this volume, in bytes per voxel (peak resident memory).", valueName: "FILE"))
    var memoryFile: String?
    @Option(help: ArgumentHelp("The model --memory converts with.", valueName: "RUN_DIR|FILE"))
    var model: String?

    func validate() throws {
        if let size, size < 8 || size % 4 != 0 { throw ValidationError("--size must be a multiple of 4, at least 8") }
        if ngf < 1 || ndf < 1 || blocks < 0 { throw ValidationError("--ngf and --ndf must be positive, --blocks not negative") }
        if iterations < 1 || inferenceRuns < 1 { throw ValidationError("--iterations and --inference-runs must be at least 1") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        if let memoryFile {
            do {
                let models = try model.map { [try SyntheticCTModel.load(URL(fileURLWithPath: $0))] } ?? []
                print(try MemoryBenchmark.run(URL(fileURLWithPath: memoryFile), models: models).jsonLine)
            } catch {
                var standardError = StandardErrorStream()
                print("mr2ct: \(error)", to: &standardError)
                throw ExitCode.failure
            }
            return
        }
        if layers {
            let s = size ?? 96
            for t in Set([1, threads]).sorted() {
                for row in CycleGANBenchmark.layers(size: s, ngf: ngf, ndf: ndf, blocks: blocks, threads: t) {
                    print(row.jsonLine)
                    fflush(nil)
                }
            }
            return
        }
        let configurations = size.map {
            [BenchmarkConfiguration(size: $0, ngf: ngf, ndf: ndf, blocks: blocks, iterations: iterations, inferenceRuns: inferenceRuns,
                                   convolution: convolution, precision: precision)]
        } ?? BenchmarkConfiguration.standard.map {
            var c = $0
            c.iterations = iterations
            c.inferenceRuns = inferenceRuns
            c.convolution = convolution
            c.precision = precision
            return c
        }
        for c in configurations {
            print(CycleGANBenchmark.run(c, threads: threads).jsonLine)
            fflush(nil)
        }
    }
}
