import Foundation
import Testing
import NIfTI
import Safetensors
import TestSupport

/// Issue 9: malformed model checkpoints through `mr2ct convert`: each is one clear error naming the model file
/// (`mr2ct: <path>: <reason>`), exit status 1, nothing on stdout, no output file; the valid model converts.
@Suite(.serialized)
struct SafetensorsCLITests {
    /// A valid MR2CT model: the PyTorch-exported golden generator (ngf 8, 2 blocks) with its metadata.
    static var validModel: URL { TorchGoldens.url("generator_weights.safetensors") }

    /// A small MR volume (16 × 16 × 3, 2 mm voxels) with a bright box, so that the body mask is not empty.
    static func writeInput(_ url: URL) throws {
        var voxels = [Float](repeating: 0, count: 16 * 16 * 3)
        for k in 0 ..< 3 { for j in 3 ..< 13 { for i in 4 ..< 12 { voxels[i + 16 * (j + 16 * k)] = Float(100 + i * j) } } }
        try NIfTIFile.write(Volume(grid: GridSize(16, 16, 3), voxels: voxels, affine: .scaling(SIMD3(2, 2, 2))), to: url)
    }

    /// The header JSON and the data section of a safetensors file.
    static func split(_ data: Data) -> (header: [String: Any], body: Data) {
        let n = Int(data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        let header = try! JSONSerialization.jsonObject(with: data.subdata(in: 8 ..< 8 + n)) as! [String: Any]
        return (header, data.subdata(in: 8 + n ..< data.count))
    }

    /// A file with `headerText` (as is) before `body`.
    static func join(_ headerText: String, _ body: Data, headerLength: UInt64? = nil) -> Data {
        var out = Data()
        let bytes = Data(headerText.utf8)
        withUnsafeBytes(of: (headerLength ?? UInt64(bytes.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + bytes + body
    }

    static func join(_ header: [String: Any], _ body: Data) throws -> Data {
        join(String(decoding: try JSONSerialization.data(withJSONObject: header), as: UTF8.self), body)
    }

    /// (label, bytes) of malformed models, built from the valid one.
    static func malformedModels() throws -> [(String, Data)] {
        let valid = try Data(contentsOf: validModel)
        let (header, body) = split(valid)
        let archive = try SafetensorsFile.read(validModel)
        let tensors = try archive.names.map { name in (name: name, shape: try archive.tensor(named: name).shape,
                                                       values: try archive.tensor(named: name).values) }
        var cases: [(String, Data)] = []
        cases.append(("empty", Data()))
        cases.append(("truncated-header", valid.prefix(200)))
        cases.append(("truncated-data", valid.prefix(valid.count - 100)))
        cases.append(("absurd-header-length", join("{}", body, headerLength: 1 << 40)))
        let headerText = String(decoding: try JSONSerialization.data(withJSONObject: header), as: UTF8.self)
        cases.append(("bad-json", join(String(headerText.dropLast()), body)))
        cases.append(("duplicate-name", join(String(headerText.dropLast()) + ",\"model.1.bias\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", body)))
        var h = header
        var entry = h["model.1.weight"] as! [String: Any]
        entry["dtype"] = "F33"
        h["model.1.weight"] = entry
        cases.append(("unknown-dtype", try join(h, body)))
        h = header
        entry = h["model.1.bias"] as! [String: Any]
        let offsets = entry["data_offsets"] as! [Int]
        entry["data_offsets"] = [offsets[0] + 4, offsets[1] + 4]
        h["model.1.bias"] = entry
        cases.append(("overlapping-offsets", try join(h, body)))
        h = header
        entry = h["model.1.weight"] as! [String: Any]
        entry["shape"] = [4, 2, 7, 7]  // same byte length, another shape
        h["model.1.weight"] = entry
        cases.append(("shape-mismatch", try join(h, body)))
        cases.append(("missing-tensor", try SafetensorsFile.encode(tensors.filter { $0.name != "model.4.bias" }, metadata: archive.metadata)))
        cases.append(("unexpected-tensor", try SafetensorsFile.encode(tensors + [("model.99.weight", [1], [0])], metadata: archive.metadata)))
        var nan = tensors
        nan[0].values[3] = .nan
        cases.append(("nan-weight", try SafetensorsFile.encode(nan, metadata: archive.metadata)))
        var noGenerator = archive.metadata
        noGenerator["generator"] = nil
        cases.append(("no-generator-metadata", try SafetensorsFile.encode(tensors, metadata: noGenerator)))
        var wrongConfiguration = archive.metadata
        wrongConfiguration["generator"] = #"{"inputChannels":1,"outputChannels":1,"ngf":16,"residualBlocks":2,"dropout":false}"#
        cases.append(("configuration-not-matching-weights", try SafetensorsFile.encode(tensors, metadata: wrongConfiguration)))
        let discriminator = try SafetensorsFile.read(TorchGoldens.url("discriminator_weights.safetensors"))
        cases.append(("a-discriminator", try SafetensorsFile.encode(
            try discriminator.names.map { ($0, try discriminator.tensor(named: $0).shape, try discriminator.tensor(named: $0).values) },
            metadata: archive.metadata)))
        return cases
    }

    @Test func malformedModelsFailWithOneLineAndWriteNothing() throws {
        let root = try TestSupport.makeTemporaryDirectory("safetensors-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let input = root.appendingPathComponent("mr.nii.gz")
        try Self.writeInput(input)

        // The valid model converts (so the failures below are the models' fault).
        let good = try TestSupport.runMR2CT(["convert", "--model", Self.validModel.path, input.path, "-o", root.appendingPathComponent("good").path])
        #expect(good.status == 0, "\(good.stderr)")

        let cases = try Self.malformedModels()
        #expect(cases.count >= 10)
        for (label, bytes) in cases {
            let model = root.appendingPathComponent("\(label).safetensors")
            try bytes.write(to: model)
            let out = root.appendingPathComponent("out-\(label)")
            let r = try TestSupport.runMR2CT(["convert", "--model", model.path, input.path, "-o", out.path])
            #expect(r.status == 1, "\(label): exit \(r.status), \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(label): \(r.stdout)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("mr2ct: \(model.path): "), "\(label): \(r.stderr)")
            print("\(label): \(r.stderr.trimmingCharacters(in: .newlines))")
            let written = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
            #expect(written.isEmpty, "\(label): wrote \(written)")
        }
    }
}
