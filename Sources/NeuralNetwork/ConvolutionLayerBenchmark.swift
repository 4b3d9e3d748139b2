import Foundation
import MR2CTSupport

/// Times each distinct convolution of a network, pass by pass, on MR2CT's own kernels and on oneDNN (float32, and
/// bfloat16 where the CPU runs it natively), at a given thread count: the measurements `ConvolutionBackendPolicy`
/// is derived from (`mr2ct bench --layers`).
public enum ConvolutionLayerBenchmark {
    /// One layer, one pass, one thread count: milliseconds per call (the fastest of `repetitions` after a warm-up:
    /// on a shared machine the minimum estimates the cost of the work, the median mostly the neighbours' load).
    public struct Row: Codable, Sendable {
        public var network: String
        public var layer: String
        public var kind: String
        public var inputShape: [Int]
        public var outputChannels: Int
        public var kernel: Int
        public var stride: Int
        public var pass: String
        public var threads: Int
        public var nativeMilliseconds: Double
        public var oneDNNMilliseconds: Double?
        /// oneDNN's bf16 kernel for the pass (bf16 operands, float32 accumulation), where `Precision.bf16.isNative`.
        public var oneDNNBFloat16Milliseconds: Double?
        public var oneDNNImplementation: String
        /// Which the `.automatic` policy picks.
        public var automatic: String

        enum CodingKeys: String, CodingKey {
            case network, layer, kind, pass, threads, kernel, stride
            case inputShape = "input_shape"
            case outputChannels = "output_channels"
            case nativeMilliseconds = "native_ms"
            case oneDNNMilliseconds = "onednn_ms"
            case oneDNNBFloat16Milliseconds = "onednn_bf16_ms"
            case oneDNNImplementation = "onednn_impl"
            case automatic
        }

        public var jsonLine: String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
        }
    }

    /// Every distinct convolution of `network` applied to `input` (shape N×C×H×W), in order.
    static func convolutions(of network: Layer, input: [Int]) -> [(Layer, [Int])] {
        var found: [(Layer, [Int])] = []
        var seen = Set<String>()
        func visit(_ layer: Layer, _ shape: [Int]) -> [Int] {
            switch layer {
            case let s as Sequential:
                var x = shape
                for l in s.layers { x = visit(l, x) }
                return x
            case let r as ResidualBlock:
                _ = visit(r.block, shape)
                return shape
            case let c as Conv2d:
                let key = "c \(c.inputChannels) \(c.outputChannels) \(c.kernelSize) \(c.stride) \(c.padding) \(c.paddingMode) \(shape)"
                if seen.insert(key).inserted { found.append((c, shape)) }
                return c.outputShape(for: shape)
            case let t as ConvTranspose2d:
                let key = "t \(t.inputChannels) \(t.outputChannels) \(t.kernelSize) \(t.stride) \(shape)"
                if seen.insert(key).inserted { found.append((t, shape)) }
                return t.outputShape(for: shape)
            default:
                return layer.outputShape(for: shape)
            }
        }
        _ = visit(network, input)
        return found
    }

    /// Rows for every convolution of `network` (named `name`), every pass, at `threads` threads.
    public static func run(_ network: SequentialNetwork, name: String, input: [Int], threads: Int,
                           repetitions: Int = 9) -> [Row] {
        ComputeThreads.set(threads)
        var random = SeededRandom(seed: 7)
        var rows: [Row] = []
        for (layer, shape) in convolutions(of: network.network, input: input) {
            let x = Tensor(shape: shape)
            for i in 0..<x.count { x.data[i] = random.nextUnitFloat() * 2 - 1 }
            let outShape = layer.outputShape(for: shape)
            let dy = Tensor(shape: outShape)
            for i in 0..<dy.count { dy.data[i] = random.nextUnitFloat() * 2 - 1 }
            let dx = Tensor(shape: shape)
            func time(_ algorithm: ConvolutionAlgorithm, _ pass: ConvolutionPass) -> Double {
                setAlgorithm(layer, algorithm)
                let record = LayerRecord(), workspace = Workspace()
                func once() {
                    switch pass {
                    case .forward:
                        _ = layer.forward(x, record: record, mode: .inference, workspace: workspace, consumeInput: false)
                    case .backwardData:
                        layer.backward(UnsafePointer(dy.pointer), gradInput: dx.pointer, record: record,
                                       parameterGradients: false, workspace: workspace, depth: 0)
                    case .backwardWeights:
                        layer.backward(UnsafePointer(dy.pointer), gradInput: nil, record: record,
                                       parameterGradients: true, workspace: workspace, depth: 0)
                    }
                }
                _ = layer.forward(x, record: record, mode: .training, workspace: workspace, consumeInput: false)
                once()
                var times: [Double] = []
                for _ in 0..<max(1, repetitions) {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    once()
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                }
                return times.min() ?? 0
            }
            for pass in ConvolutionPass.allCases {
                let native = time(.native, pass)
                let probe = oneDNNProbe(layer, shape, pass)
                let dnnl = probe.map { _ in time(.onednn, pass) }
                var bfloat16: Double?
                if Precision.bf16.isNative, probe != nil {
                    setPrecision(layer, .bf16)
                    bfloat16 = time(.onednn, pass)
                    setPrecision(layer, .f32)
                }
                setAlgorithm(layer, .automatic)
                let (kind, cout, k, s): (String, Int, Int, Int) = {
                    if let c = layer as? Conv2d { return ("conv", c.outputChannels, c.kernelSize, c.stride) }
                    let t = layer as! ConvTranspose2d
                    return ("transposed", t.outputChannels, t.kernelSize, t.stride)
                }()
                rows.append(Row(network: name, layer: (layer.parameters.first?.name ?? "").replacingOccurrences(of: ".weight", with: ""),
                                kind: kind, inputShape: shape, outputChannels: cout, kernel: k, stride: s,
                                pass: "\(pass)", threads: threads, nativeMilliseconds: (native * 1000).rounded() / 1000,
                                oneDNNMilliseconds: dnnl.map { ($0 * 1000).rounded() / 1000 },
                                oneDNNBFloat16Milliseconds: bfloat16.map { ($0 * 1000).rounded() / 1000 },
                                oneDNNImplementation: probe ?? "",
                                automatic: automaticUsesOneDNN(layer, shape, pass) ? "onednn" : "native"))
            }
        }
        return rows
    }

    private static func setPrecision(_ layer: Layer, _ precision: Precision) {
        if let c = layer as? Conv2d { c.precision = precision }
        if let t = layer as? ConvTranspose2d { t.precision = precision }
    }

    private static func setAlgorithm(_ layer: Layer, _ algorithm: ConvolutionAlgorithm) {
        if let c = layer as? Conv2d { c.algorithm = algorithm }
        if let t = layer as? ConvTranspose2d { t.algorithm = algorithm }
    }

    /// The oneDNN implementation name for `pass`, or nil when oneDNN cannot run it.
    private static func oneDNNProbe(_ layer: Layer, _ shape: [Int], _ pass: ConvolutionPass) -> String? {
        let workspace = Workspace()
        setAlgorithm(layer, .onednn)
        defer { setAlgorithm(layer, .automatic) }
        let made: OneDNNConvolution?
        if let c = layer as? Conv2d {
            made = c.oneDNNPrimitive(pass, batch: shape[0], c.geometry(shape), workspace)
        } else if let t = layer as? ConvTranspose2d {
            made = t.oneDNNPrimitive(pass, batch: shape[0], t.geometry(shape), workspace)
        } else {
            made = nil
        }
        return made.map { $0.implementation(pass) }
    }

    private static func automaticUsesOneDNN(_ layer: Layer, _ shape: [Int], _ pass: ConvolutionPass) -> Bool {
        if let c = layer as? Conv2d { return c.usesOneDNN(pass, c.geometry(shape)) }
        if let t = layer as? ConvTranspose2d { return t.usesOneDNN(pass, t.geometry(shape)) }
        return false
    }
}
