import Testing
import Foundation
@testable import NeuralNetwork
import Networks
import MR2CTSupport

/// Storage that takes memory only once written (`Tensor(zeroPagesWithShape:)`), as a parameter's gradient does:
/// residency read page by page with mincore(2), so the figures are this tensor's own, not the process's (which other
/// tests running at the same time move).
@Suite struct TensorStorageTests {
    /// Pages of `tensor`'s storage that are resident in memory, and how many pages it spans.
    func residentPages(_ tensor: Tensor) -> (resident: Int, pages: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        // mincore takes a page-aligned start: from the page the storage begins in to the one it ends in.
        let first = Int(bitPattern: tensor.data.baseAddress!) / page * page
        let end = Int(bitPattern: tensor.data.baseAddress!) + tensor.count * MemoryLayout<Float>.stride
        let start = UnsafeMutableRawPointer(bitPattern: first)!
        let bytes = end - first
        let pages = (bytes + page - 1) / page
        var vector = [UInt8](repeating: 0, count: pages)
        let status = vector.withUnsafeMutableBufferPointer { mincore(start, bytes, $0.baseAddress!) }
        #expect(status == 0, "mincore failed: errno \(errno)")
        return (vector.filter { $0 & 1 != 0 }.count, pages)
    }

    @Test func zeroPageStorageIsZeroPageAlignedAndTakesMemoryOnlyWhereWritten() {
        let tensor = Tensor(zeroPagesWithShape: [16, 1024, 1024])   // 64 MiB
        #expect(tensor.count == 16 << 20 && tensor.shape == [16, 1024, 1024])
        #expect(Int(bitPattern: tensor.data.baseAddress!) % 4096 == 0)
        let untouched = residentPages(tensor)
        #expect(untouched.pages == 16_384)
        #expect(untouched.resident == 0)
        // Writing one plane of 4 MiB commits its pages, and at most one 2 MiB huge page more where transparent huge
        // pages are always on (this machine has them only on madvise).
        for i in 0..<(1 << 20) { tensor.data[i] = Float(i) }
        let written = residentPages(tensor).resident
        #expect(written >= 1024 && written <= 1024 + 512, "\(written) pages resident after writing 1024")
        #expect(tensor.data[(1 << 20) - 1] == Float((1 << 20) - 1))
        // The rest reads as zeros (reading maps the kernel's shared zero page, which mincore counts as present).
        #expect(UnsafeBufferPointer(rebasing: tensor.data[(1 << 20)...]).allSatisfy { $0 == 0 })
        tensor.fill(1)
        #expect(residentPages(tensor).resident == 16_384)
    }

    @Test func smallZeroPageTensorsAreOrdinaryZeroedTensors() {
        let small = Tensor(zeroPagesWithShape: [3, 5])
        #expect(small.toArray() == [Float](repeating: 0, count: 15))
        #expect(Int(bitPattern: small.data.baseAddress!) % 64 == 0)
        let empty = Tensor(zeroPagesWithShape: [0, 4])
        #expect(empty.count == 0)
    }

    /// A generator that is only run forward holds no gradient memory: after inference every gradient page of
    /// the residual convolutions is still unbacked, and a backward pass commits them.
    @Test func aGeneratorRunOnlyForwardCommitsNoGradientPages() {
        let generator = ResnetGenerator(GeneratorConfiguration(ngf: 32, residualBlocks: 2))
        var random = SeededRandom(seed: 3)
        for p in generator.parameters { for i in 0..<p.value.count { p.value.data[i] = Float(random.nextNormal()) * 0.1 } }
        let input = Tensor(shape: [1, 1, 32, 32], values: (0..<1024).map { _ in Float(random.nextNormal()) })
        _ = generator.infer(input)
        // The residual blocks' two 128 × 128 × 3 × 3 convolutions each: 576 KiB of gradient apiece.
        let residual = generator.parameters.filter { $0.name.contains("conv_block") && $0.name.hasSuffix("weight") }
        #expect(residual.count == 4)
        for p in residual {
            #expect(p.gradient.count * 4 == 589_824)
            #expect(residentPages(p.gradient).resident == 0, "\(p.name)")
            #expect(residentPages(p.value).resident == residentPages(p.value).pages, "\(p.name)")
        }
        let record = LayerRecord()
        let output = generator.forward(input, record: record)
        generator.backward(Tensor(shape: output.shape, values: (0..<output.count).map { _ in Float(random.nextNormal()) }),
                           record: record)
        for p in residual {
            #expect(residentPages(p.gradient).resident == residentPages(p.gradient).pages, "\(p.name)")
            #expect(p.gradient.toArray().contains { $0 != 0 }, "\(p.name)")
        }
    }
}
