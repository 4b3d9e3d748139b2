import Testing
import MR2CTSupport
@testable import NeuralNetwork

/// Finite-difference checks of every layer's and loss's backward pass.
///
/// f(x) = Σ r·layer(x) with a fixed random r; the analytic gradient from `backward(r)` is compared with the
/// central difference (f(x + ε) − f(x − ε)) / 2ε, forward passes in float32 and f accumulated in double.
/// ε = 1e-2 on O(1) inputs keeps the float32 rounding error of the difference near 1e-4; the truncation error is
/// O(ε²). Tolerance: |analytic − numeric| ≤ 5e-3 · max(1, |numeric|). Inputs of ReLU-like layers are kept
/// at least 0.2 away from the kink so that ±ε never crosses it.
struct GradientCheck {
    var random = SeededRandom(seed: 42)
    let eps: Float = 1e-2
    let tolerance: Double = 5e-3

    mutating func tensor(_ shape: [Int], awayFromZero: Float = 0) -> Tensor {
        let t = Tensor(shape: shape)
        for i in 0..<t.count {
            var v = Float(random.nextNormal())
            if awayFromZero > 0 { v = (v < 0 ? -1 : 1) * (abs(v) + awayFromZero) }
            t.data[i] = v
        }
        return t
    }

    /// Plane-wise zero-mean input whose values stay ≥ `margin` away from 0 (for normalisation + ReLU kinks).
    mutating func planes(_ shape: [Int], margin: Float = 0.25) -> Tensor {
        let t = Tensor(shape: shape)
        let size = shape[2] * shape[3]
        for p in 0..<(shape[0] * shape[1]) {
            while true {
                var v = (0..<size).map { _ in Float(random.nextNormal()) }
                let mean = v.reduce(0, +) / Float(size)
                v = v.map { $0 - mean + Float(p % 3) * 0.3 }     // distinct plane means
                if v.allSatisfy({ abs($0 - Float(p % 3) * 0.3) > margin }) {
                    for i in 0..<size { t.data[p * size + i] = v[i] }
                    break
                }
            }
        }
        return t
    }

    func objective(_ y: Tensor, _ r: Tensor) -> Double {
        var s = 0.0
        for i in 0..<y.count { s += Double(y.data[i]) * Double(r.data[i]) }
        return s
    }

    /// Checks d f / d input and d f / d every parameter at up to `samples` coordinates each.
    mutating func check(_ layer: Layer, input: Tensor, mode: ForwardMode = .training, samples: Int = 24,
                        reset: () -> Void = {}, sourceLocation: SourceLocation = #_sourceLocation) {
        for p in layer.parameters { p.gradient.fill(0) }
        reset()
        let record = LayerRecord()
        let y = layer.forward(input, record: record, mode: mode, workspace: Workspace(), consumeInput: false)
        let r = tensor(y.shape)
        let dx = layer.backward(r, record: record)
        func f() -> Double {
            reset()
            return objective(layer.forward(input, record: LayerRecord(), mode: mode, workspace: Workspace(), consumeInput: false), r)
        }
        func compare(_ target: Tensor, _ analytic: Tensor, _ what: String) {
            let stride = max(1, target.count / samples)
            var i = (Int(random.next() % UInt64(stride)))
            while i < target.count {
                let v = target.data[i]
                target.data[i] = v + eps
                let plus = f()
                target.data[i] = v - eps
                let minus = f()
                target.data[i] = v
                let numeric = (plus - minus) / Double(2 * eps)
                let a = Double(analytic.data[i])
                #expect(abs(a - numeric) <= tolerance * max(1, abs(numeric)),
                        "\(what)[\(i)]: analytic \(a), numeric \(numeric)", sourceLocation: sourceLocation)
                i += stride
            }
        }
        compare(input, dx, "input")
        for p in layer.parameters { compare(p.value, p.gradient, p.name) }
    }
}

@Suite struct GradientCheckTests {
    @Test func conv2dZeroPaddingStrideOneAndTwo() {
        var g = GradientCheck()
        for stride in [1, 2] {
            let conv = Conv2d(name: "c", inputChannels: 3, outputChannels: 4, kernelSize: 3, stride: stride, padding: 1)
            for p in conv.parameters { p.value.assign(from: g.tensor(p.value.shape)) }
            g.check(conv, input: g.tensor([2, 3, 7, 6]))
        }
    }

    @Test func conv2dKernel4Stride2NoBias() {
        var g = GradientCheck()
        let conv = Conv2d(name: "c", inputChannels: 2, outputChannels: 3, kernelSize: 4, stride: 2, padding: 1, bias: false)
        conv.weight.value.assign(from: g.tensor(conv.weight.value.shape))
        g.check(conv, input: g.tensor([1, 2, 8, 9]))
    }

    @Test func conv2dReflectionPaddingFolded() {
        var g = GradientCheck()
        let conv = Conv2d(name: "c", inputChannels: 2, outputChannels: 3, kernelSize: 7, padding: 3, paddingMode: .reflect)
        for p in conv.parameters { p.value.assign(from: g.tensor(p.value.shape)) }
        g.check(conv, input: g.tensor([1, 2, 6, 5]))
    }

    @Test func conv2dTiledColumnBuffer() {
        var g = GradientCheck()
        let saved = ConvGeometry.columnBudget
        ConvGeometry.columnBudget = 40   // forces one output row per tile
        defer { ConvGeometry.columnBudget = saved }
        let conv = Conv2d(name: "c", inputChannels: 2, outputChannels: 3, kernelSize: 3, padding: 1, paddingMode: .reflect)
        for p in conv.parameters { p.value.assign(from: g.tensor(p.value.shape)) }
        g.check(conv, input: g.tensor([2, 2, 6, 5]))
        let convT = ConvTranspose2d(name: "t", inputChannels: 3, outputChannels: 2, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1)
        for p in convT.parameters { p.value.assign(from: g.tensor(p.value.shape)) }
        g.check(convT, input: g.tensor([1, 3, 4, 5]))
    }

    @Test func conv2dSingleOutputChannelDirectKernel() {
        var g = GradientCheck()
        for mode in [PaddingMode.reflect, .zeros] {
            let conv = Conv2d(name: "c", inputChannels: 3, outputChannels: 1, kernelSize: mode == .reflect ? 7 : 4,
                              padding: mode == .reflect ? 3 : 1, paddingMode: mode)
            #expect(conv.usesDirectKernel)
            for p in conv.parameters { p.value.assign(from: g.tensor(p.value.shape)) }
            g.check(conv, input: g.tensor([2, 3, 6, 7]))
        }
    }

    @Test func convTranspose2d() {
        var g = GradientCheck()
        let a = ConvTranspose2d(name: "t", inputChannels: 4, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1)
        for p in a.parameters { p.value.assign(from: g.tensor(p.value.shape)) }
        g.check(a, input: g.tensor([2, 4, 4, 3]))
        let b = ConvTranspose2d(name: "t", inputChannels: 2, outputChannels: 3, kernelSize: 4, stride: 1, padding: 0, bias: false)
        b.weight.value.assign(from: g.tensor(b.weight.value.shape))
        g.check(b, input: g.tensor([1, 2, 3, 4]))
    }

    @Test func instanceNormWithFusedActivations() {
        var g = GradientCheck()
        for affine in [false, true] {
            for activation in [FusedActivation.none, .relu, .leakyReLU(slope: 0.2)] {
                let norm = InstanceNorm2d(name: "n", channels: 3, affine: affine, activation: activation)
                if affine {
                    norm.weight!.value.assign(from: g.tensor([3]))
                    norm.bias!.value.fill(0)   // β ≠ 0 would move the kink away from x̂ = 0; γ varies
                }
                g.check(norm, input: g.planes([2, 3, 5, 6]))
            }
        }
        // β ≠ 0 without a kink: the affine shift itself.
        let shifted = InstanceNorm2d(name: "n", channels: 2, affine: true)
        shifted.weight!.value.assign(from: g.tensor([2]))
        shifted.bias!.value.assign(from: g.tensor([2]))
        g.check(shifted, input: g.tensor([1, 2, 4, 4]))
    }

    @Test func batchNormTrainingAndInference() {
        var g = GradientCheck()
        let norm = BatchNorm2d(name: "bn", channels: 3)
        norm.weight!.value.assign(from: g.tensor([3]))
        norm.bias!.value.assign(from: g.tensor([3]))
        g.check(norm, input: g.tensor([2, 3, 4, 5]), mode: .training)
        norm.runningMean.assign(from: g.tensor([3]))
        for c in 0..<3 { norm.runningVariance.data[c] = 0.5 + Float(c) }
        g.check(norm, input: g.tensor([2, 3, 4, 5]), mode: .inference)
    }

    @Test func elementwiseActivations() {
        var g = GradientCheck()
        for kind in [Activation.Kind.relu, .leakyReLU(slope: 0.2), .tanh, .sigmoid] {
            g.check(Activation(kind), input: g.tensor([2, 3, 4, 4], awayFromZero: 0.2))
        }
    }

    @Test func dropoutTrainingAndInference() {
        var g = GradientCheck()
        let dropout = Dropout(probability: 0.5, seed: 7)
        g.check(dropout, input: g.tensor([1, 2, 5, 5]), reset: { dropout.random = SeededRandom(seed: 7) })
        g.check(dropout, input: g.tensor([1, 2, 5, 5]), mode: .inference)
    }

    @Test func reflectionPad() {
        var g = GradientCheck()
        g.check(ReflectionPad2d(2), input: g.tensor([2, 2, 4, 5]))
    }

    @Test func residualBlockAndSequential() {
        var g = GradientCheck()
        let block = ResidualBlock(Sequential([
            Conv2d(name: "a", inputChannels: 2, outputChannels: 2, kernelSize: 3, padding: 1, paddingMode: .reflect),
            Activation(.tanh),
            Conv2d(name: "b", inputChannels: 2, outputChannels: 2, kernelSize: 3, padding: 1, paddingMode: .reflect),
        ]))
        for p in block.parameters { p.value.assign(from: g.tensor(p.value.shape)) }
        let net = Sequential([
            Conv2d(name: "in", inputChannels: 1, outputChannels: 2, kernelSize: 3, stride: 2, padding: 1),
            block,
            ConvTranspose2d(name: "out", inputChannels: 2, outputChannels: 1, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1),
        ])
        for p in net.parameters { p.value.assign(from: g.tensor(p.value.shape, awayFromZero: 0)) }
        g.check(net, input: g.tensor([1, 1, 8, 6]), samples: 12)
    }

    @Test func losses() {
        var g = GradientCheck()
        let x = g.tensor([1, 1, 5, 4], awayFromZero: 0.1)
        let t = g.tensor([1, 1, 5, 4])
        let labels = Tensor(shape: t.shape, values: (0..<t.count).map { Float($0 % 3) / 2 })
        let cases: [(String, (Tensor?) -> Float)] = [
            ("mse const", { Loss.meanSquaredError(x, target: 1, scale: 0.5, gradient: $0) }),
            ("mse", { Loss.meanSquaredError(x, target: t, gradient: $0) }),
            ("l1", { Loss.l1(x, target: t, scale: 10, gradient: $0) }),
            ("bce const", { Loss.binaryCrossEntropyWithLogits(x, target: 0, gradient: $0) }),
            ("bce", { Loss.binaryCrossEntropyWithLogits(x, target: labels, gradient: $0) }),
        ]
        for (name, loss) in cases {
            let grad = Tensor(shape: x.shape)
            _ = loss(grad)
            for i in 0..<x.count {
                let v = x.data[i]
                x.data[i] = v + g.eps
                let plus = Double(loss(nil))
                x.data[i] = v - g.eps
                let minus = Double(loss(nil))
                x.data[i] = v
                let numeric = (plus - minus) / Double(2 * g.eps)
                #expect(abs(Double(grad.data[i]) - numeric) <= g.tolerance * max(1, abs(numeric)), "\(name)[\(i)]")
            }
        }
    }
}
