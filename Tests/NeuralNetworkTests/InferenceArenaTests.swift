import Testing
import Foundation
import MR2CTSupport
@testable import NeuralNetwork
import TestSupport
import Networks

/// Inference through the activation arena (`ActivationArena`, `SequentialNetwork.infer`): the same values bit for
/// bit as the record-keeping passes, nothing allocated once the shapes repeat, and only the live feature maps held.
/// Serialized: the bit-for-bit comparisons need the kernels' thread count to stay put between the two passes they
/// compare (a running fork, e.g. the concurrency test's, switches OpenBLAS to one thread, which rounds otherwise).
@Suite(.serialized) struct InferenceArenaTests {
    func randomize(_ net: ParameterContainer, seed: UInt64) {
        var r = SeededRandom(seed: seed)
        for p in net.parameters { for i in 0..<p.value.count { p.value.data[i] = Float(r.nextNormal()) * 0.2 } }
        // BatchNorm running statistics away from (0, 1), so that eval mode is not the identity.
        for b in net.buffers {
            if b.name.hasSuffix("running_mean") { for i in 0..<b.value.count { b.value.data[i] = Float(r.nextNormal()) * 0.3 } }
            if b.name.hasSuffix("running_var") { for i in 0..<b.value.count { b.value.data[i] = 0.5 + Float(r.nextUnitFloat()) } }
        }
    }

    func image(_ seed: UInt64, _ shape: [Int]) -> Tensor {
        var r = SeededRandom(seed: seed)
        return Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(r.nextNormal()) })
    }

    /// Bytes of the distinct tensors a record tree keeps (outputs and saved intermediates).
    func keptBytes(_ record: LayerRecord) -> Int {
        var seen = Set<ObjectIdentifier>(), bytes = 0
        func visit(_ r: LayerRecord) {
            // An output in the workspace's shared activation buffer is not the record's.
            for t in (r.outputIsShared ? [] : [r.output]) + r.saved {
                if let t, seen.insert(ObjectIdentifier(t)).inserted { bytes += 4 * t.count }
            }
            r.children.forEach(visit)
        }
        visit(record)
        return bytes
    }

    /// Without Dropout and BatchNorm a training-mode forward computes the inference function: the arena pass
    /// (in place, no x̂) gives the same bits, in f32 and in the bf16 precision mode, for the ResNet generator
    /// (InstanceNorm with fused ReLU, residual adds) and the PatchGAN (InstanceNorm with fused LeakyReLU).
    @Test(arguments: [Precision.f32, .bf16])
    func inferenceIsBitIdenticalToTheTrainingForward(precision: Precision) {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 8, residualBlocks: 2))
        randomize(g, seed: 31)
        g.setPrecision(precision)
        let d = NLayerDiscriminator(DiscriminatorConfiguration(ndf: 8))
        randomize(d, seed: 32)
        d.setPrecision(precision)
        let nets: [(SequentialNetwork, [Int])] = [(g, [2, 1, 32, 24]), (d, [2, 1, 32, 32])]
        for (net, shape) in nets {
            let x = image(33, shape)
            let expected = net.forward(x, record: LayerRecord()).toArray()
            #expect(net.infer(x).toArray() == expected, "\(type(of: net)) \(precision)")
            #expect(net.infer(x).toArray() == expected, "\(type(of: net)) \(precision), second call (reused arena)")
        }
    }

    /// With Dropout and BatchNorm the reference is the record-keeping forward in `.inference` mode (Dropout the
    /// identity, BatchNorm on its running statistics, x̂ saved): the pix2pix U-Net with BatchNorm and dropout, the
    /// U-Net with InstanceNorm, the ResNet generator with dropout, the BatchNorm PatchGAN.
    @Test func inferenceIsBitIdenticalToTheRecordKeepingEvalForward() {
        let nets: [(SequentialNetwork, [Int])] = [
            (UNetGenerator(UNetConfiguration(ngf: 4, downsamplings: 6, dropout: true, norm: .batch)), [2, 1, 64, 64]),
            (UNetGenerator(UNetConfiguration(ngf: 4, downsamplings: 5, dropout: true, norm: .instance)), [1, 1, 32, 32]),
            (ResnetGenerator(GeneratorConfiguration(ngf: 4, residualBlocks: 2, dropout: true)), [2, 1, 16, 20]),
            (BatchNormPatchDiscriminator(DiscriminatorConfiguration(inputChannels: 2, ndf: 8)), [2, 2, 32, 32]),
        ]
        for (k, (net, shape)) in nets.enumerated() {
            randomize(net, seed: 40 + UInt64(k))
            let x = image(50 + UInt64(k), shape)
            let expected = net.network.forward(x, record: LayerRecord(), mode: .inference, workspace: Workspace(),
                                               consumeInput: false).toArray()
            #expect(net.infer(x).toArray() == expected, "\(type(of: net)) \(shape)")
            #expect(net.infer(x).toArray() == expected, "\(type(of: net)) \(shape), second call")
        }
        // The input is left as it was (the arena's layers work in place on intermediates only).
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 4, residualBlocks: 1))
        let x = image(60, [1, 1, 16, 16]), before = x.toArray()
        _ = g.infer(x)
        #expect(x.toArray() == before)
    }

    /// The ResNet generator's live set, by hand. With f = ngf, an N × 1 × H × W input and H, W multiples of 4, the
    /// arena holds one N × f × H × W map (the 7 × 7 conv's output, normalised in place, later reused by the last
    /// up-convolution), one N × 2f × H/2 × W/2 (first down, later first up), three N × 4f × H/4 × W/4 (a residual
    /// block's input, its branch after the first and after the second conv; the sum goes into the first branch
    /// buffer again) and the N × 1 × H × W output: N·H·W·(f + f/2 + 3f/4 + 1) floats. At most 1.5·f·N·H·W floats are
    /// alive at once (the first down-convolution's input and output, the last up-convolution's). A training record
    /// keeps every convolution's output (normalised in place: x̂) and 1/σ per normalised plane, the ReLU output the
    /// first residual block reads and each block's sum, the activations the next convolution reads being rebuilt
    /// from x̂ (`OutputRecomputingLayer`): 5·f + 1 maps for two blocks (and 10.25·f + 1 for nine) and 26·f·N floats.
    @Test func theArenaHoldsTheLiveSetAndAllocatesNothingOnceShapesRepeat() {
        let f = 8, n = 2, h = 32, w = 24, hw = h * w
        let g = ResnetGenerator(GeneratorConfiguration(ngf: f, residualBlocks: 2))
        randomize(g, seed: 70)
        let x = image(71, [n, 1, h, w])
        _ = g.infer(x)
        let first = g.inferenceMemory
        #expect(first.contexts == 1)
        #expect(first.activationBytes == 4 * n * hw * (f + f / 2 + 3 * f / 4 + 1))
        #expect(first.peakActivationBytes == 4 * n * hw * (3 * f / 2))
        #expect(first.activationAllocations == 6)
        let record = LayerRecord()
        _ = g.forward(x, record: record)
        let kept = keptBytes(record)
        #expect(kept == 4 * n * (hw * (5 * f + 1) + 26 * f))
        #expect(2 * first.activationBytes < kept)
        // Second and third calls: no new tensor, no workspace growth.
        for _ in 0..<2 {
            _ = g.infer(image(72, [n, 1, h, w]))
            #expect(g.inferenceMemory == first)
        }
        // A new shape (a volume's last, smaller batch) replaces the old set instead of adding to it.
        _ = g.infer(image(73, [1, 1, h, w]))
        let smaller = g.inferenceMemory
        #expect(smaller.activationBytes == 4 * hw * (f + f / 2 + 3 * f / 4 + 1))
        #expect(smaller.activationAllocations == 12)
        _ = g.infer(image(74, [1, 1, h, w]))
        #expect(g.inferenceMemory == smaller)
        g.releaseInferenceBuffers()
        #expect(g.inferenceMemory == InferenceMemory())
    }

    /// Two threads calling `infer` at once (`ComputeThreads.map`, as conversion runs its two chains) each take a
    /// context of their own: the same bits as serial calls on the same single-threaded kernels (OpenBLAS rounds
    /// differently in the last bits with another thread count, so the serial reference runs with one thread).
    @Test func concurrentCallsGiveTheSerialOutputs() {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 8, residualBlocks: 2))
        randomize(g, seed: 80)
        let inputs = [image(81, [2, 1, 16, 16]), image(82, [1, 1, 24, 16]), image(83, [2, 1, 16, 16]), image(84, [1, 1, 24, 16])]
        let threads = ComputeThreads.count
        defer { ComputeThreads.set(threads) }
        ComputeThreads.set(1)
        let expected = inputs.map { g.infer($0).toArray() }
        ComputeThreads.set(2)
        for round in 0..<2 {
            let outputs = ComputeThreads.map(inputs.count) { g.infer(inputs[$0]).toArray() }
            for i in inputs.indices { #expect(outputs[i] == expected[i], "input \(i), round \(round)") }
        }
        #expect((1...2).contains(g.inferenceMemory.contexts))
    }

    /// A single slice inferred outside a fork runs oneDNN's forward passes on all compute threads
    /// (`OneDNNConvolution.threads(for:)`): every convolution on oneDNN, float32 and bf16 (native where the CPU has
    /// it, else emulated), gives the same bits with one and with two threads.
    @Test(arguments: [Precision.f32, .bf16])
    func oneDNNForwardRoundsAlikeOnOneAndTwoThreads(precision: Precision) {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 16, residualBlocks: 2))
        randomize(g, seed: 90)
        g.setConvolutionAlgorithm(.onednn)
        g.setPrecision(precision)
        let input = image(91, [1, 1, 64, 48])
        let threads = ComputeThreads.count
        defer { ComputeThreads.set(threads) }
        ComputeThreads.set(1)
        let one = g.infer(input).toArray()
        g.releaseInferenceBuffers()
        ComputeThreads.set(2)
        let two = g.infer(input).toArray()
        #expect(OneDNNConvolution.threads(for: .forward) == 2 && OneDNNConvolution.threads(for: .backwardData) == 1)
        #expect(one == two)
        #expect(one.contains { $0 != 0 })
    }

    /// oneDNN's transient buffers (blocked activation copies, scratchpads) are pooled per call, not kept per thread:
    /// inference calls from three threads that stay alive, one after the other, leave no more buffers than one call
    /// needs (conversion's per-core calls run on whichever libdispatch worker is free; per thread, a third worker
    /// kept a 24 MB copy at 256², ngf 64).
    @Test func oneDNNTransientBuffersArePooledNotKeptPerThread() throws {
        let g = ResnetGenerator(GeneratorConfiguration(ngf: 16, residualBlocks: 1))
        randomize(g, seed: 92)
        g.setConvolutionAlgorithm(.onednn)
        let input = image(93, [1, 1, 32, 32])
        let expected = g.infer(input).toArray()
        let before = OneDNNConvolution.transientBuffers
        #expect(before.count >= 1 && before.bytes > 0)
        let done = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let outputs = ResultBox<[[Float]]>()
        outputs.value = []
        let lock = NSLock()
        for _ in 0..<3 {
            // Each thread stays alive (as a libdispatch worker does) until all three have run.
            let thread = Thread {
                let y = g.infer(input).toArray()
                lock.lock(); outputs.value!.append(y); lock.unlock()
                done.signal()
                release.wait()
            }
            thread.start()
            done.wait()
        }
        let after = OneDNNConvolution.transientBuffers
        for _ in 0..<3 { release.signal() }
        #expect(after.count == before.count, "\(before) → \(after)")
        #expect(after.bytes == before.bytes)
        #expect(outputs.value!.count == 3 && outputs.value!.allSatisfy { $0 == expected })
    }
}
