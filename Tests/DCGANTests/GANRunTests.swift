import Foundation
import Testing
import DCGAN
import NeuralNetwork
import Reporting
import Training

/// A DC-GAN and a conditional-GAN run on small PNG folders through the Training layer: a run stopped by a signal and
/// resumed equals an uninterrupted one bit for bit (losses in the log, every generator weight and buffer).
@Suite struct GANRunTests {
    /// 16 × 16 gray PNGs (a gradient and a disc whose size depends on the image), in class sub-folders for cgan.
    static func makeImages(conditional: Bool) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gan-png-\(UUID().uuidString)")
        for c in 0..<(conditional ? 2 : 1) {
            let folder = conditional ? root.appendingPathComponent("class\(c)") : root
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for n in 0..<12 {
                var pixels = [UInt8](repeating: 0, count: 256)
                for y in 0..<16 { for x in 0..<16 {
                    let r = Double((x - 8) * (x - 8) + (y - 8) * (y - 8)).squareRoot()
                    pixels[y * 16 + x] = r < Double(2 + n % 5 + 2 * c) ? 220 : UInt8(x * 8 + c * 40)
                } }
                try PNGImage.writeGray8(pixels, width: 16, height: 16, to: folder.appendingPathComponent("img\(n).png"))
            }
        }
        return root
    }

    static func configuration(_ images: URL, family: GANFamily) -> GANRunConfiguration {
        var c = GANRunConfiguration(source: PatchSource(images: images.path))
        c.gan.family = family
        c.gan.imageSize = 16
        c.gan.nz = 8
        c.gan.ngf = 4
        c.gan.ndf = 4
        c.gan.batchSize = 4
        c.gan.embeddingDimension = 3
        c.iterations = 8
        c.options = LoopOptions(checkpointEvery: 100, sampleEvery: 100, keepCheckpoints: 0)
        return c
    }

    final class StopAt: TrainingCallback {
        let stop: StopSignal
        init(_ stop: StopSignal) { self.stop = stop }
        func trainingDidStep(_ event: StepEvent) throws { if event.iteration == 3 { stop.request(SIGTERM) } }
    }

    @Test(arguments: [GANFamily.dcgan, .cgan])
    func stoppedAndResumedRunIsBitIdentical(_ family: GANFamily) throws {
        let images = try Self.makeImages(conditional: family == .cgan)
        let a = FileManager.default.temporaryDirectory.appendingPathComponent("gan-run-a-\(UUID().uuidString)")
        let b = FileManager.default.temporaryDirectory.appendingPathComponent("gan-run-b-\(UUID().uuidString)")
        defer { for u in [images, a, b] { try? FileManager.default.removeItem(at: u) } }
        let c = Self.configuration(images, family: family)
        let whole = try GANRun(directory: a, configuration: c, intensity: nil, requireExisting: false) { _ in }
        #expect(whole.data.dataset.count == (family == .cgan ? 24 : 12))
        #expect(whole.configuration.gan.classNames == (family == .cgan ? ["class0", "class1"] : []))
        #expect(try whole.loop.run() == .completed(iteration: 8))

        let stop = StopSignal()
        do {
            let part = try GANRun(directory: b, configuration: c, intensity: nil, requireExisting: false) { _ in }
            part.loop.callbacks.append(StopAt(stop))
            #expect(try part.loop.run(stop: stop) == .stopped(signal: SIGTERM, iteration: 3))
        }
        var messages: [String] = []
        let resumed = try GANRun(directory: b, configuration: c, intensity: nil, requireExisting: true) { messages.append($0) }
        #expect(messages.contains { $0.contains("resuming") && $0.contains("iteration 3 of 8") })
        #expect(try resumed.loop.run() == .completed(iteration: 8))

        func losses(_ run: URL) throws -> [[UInt64?]] {
            try RunLog.read(run.appendingPathComponent("log.ndjson")).filter { $0.kind == .train }.map { $0.values.map { $0.value?.bitPattern } }
        }
        #expect(try losses(a).count == 8)
        #expect(try losses(a).map { Array($0.dropLast()) } == losses(b).map { Array($0.dropLast()) })  // all but seconds
        for (x, y) in zip(whole.model.generator.parameters.map(\.value) + whole.model.generator.buffers.map(\.value),
                          resumed.model.generator.parameters.map(\.value) + resumed.model.generator.buffers.map(\.value)) {
            #expect(x.toArray().map(\.bitPattern) == y.toArray().map(\.bitPattern))
        }
        // The saved generator is a complete model.
        let file = try GANModelFile.load(b.appendingPathComponent("checkpoints/latest/G.safetensors"))
        #expect(file.configuration == resumed.configuration.gan)

        // Another model on the same run folder is refused, naming the difference.
        var other = c
        other.gan.ngf = 8
        #expect(throws: RunError.self) { _ = try GANRun(directory: b, configuration: other, intensity: nil, requireExisting: false) { _ in } }
    }
}
