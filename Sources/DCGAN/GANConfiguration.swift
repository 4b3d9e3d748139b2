import Foundation

/// The GAN families of this module.
public enum GANFamily: String, Codable, CaseIterable, Sendable {
    /// DC-GAN (Radford et al. 2015): noise z → image.
    case dcgan
    /// Conditional GAN (Mirza & Osindero 2014) on the DC-GAN body: z and a class → image.
    case cgan
}

/// The linear map between a patch's own units (HU, PNG gray levels) and the networks' [−1, 1]:
/// value = lower + (y + 1)/2 · (upper − lower).
public struct IntensityRange: Codable, Sendable, Hashable {
    public var lower: Float
    public var upper: Float

    public init(lower: Float, upper: Float) {
        self.lower = lower
        self.upper = upper
    }

    /// A patch value in [−1, 1] (clamped).
    @inlinable public func normalized(_ value: Float) -> Float {
        min(1, max(-1, 2 * (value - lower) / (upper - lower) - 1))
    }

    /// A network value back in the patch's units.
    @inlinable public func value(_ y: Float) -> Float { lower + (y + 1) / 2 * (upper - lower) }

    /// 8-bit PNG gray levels.
    public static let gray8 = IntensityRange(lower: 0, upper: 255)
}

/// A configuration problem, one line each.
public enum GANConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    case imageSize(Int)
    case outOfRange(option: String, value: Int, range: ClosedRange<Int>)
    case notPositive(option: String)
    case classes(Int)
    case intensityRange(IntensityRange)
    case beta1(Float)

    public var description: String {
        switch self {
        case .imageSize(let s): "--image-size \(s): must be a multiple of 16 from 16 to 512"
        case .outOfRange(let option, let value, let range): "--\(option) \(value): must be in \(range.lowerBound)…\(range.upperBound)"
        case .notPositive(let option): "--\(option) must be a positive number"
        case .classes(let n): "a conditional GAN needs at least 2 classes (found \(n))"
        case .intensityRange(let r): "the intensity range \(r.lower)…\(r.upper) is empty"
        case .beta1(let b): "--beta1 \(b): must be in [0, 1)"
        }
    }
}

/// A DC-GAN or conditional GAN, PyTorch's examples/dcgan defaults: 64 × 64 images, nz 100, ngf = ndf = 64,
/// batch 64, Adam 2e-4 with β1 0.5, BCE; weights N(0, 0.02), BatchNorm scales N(1, 0.02).
public struct GANConfiguration: Codable, Sendable, Hashable {
    public var family: GANFamily = .dcgan
    /// Image side (a multiple of 16).
    public var imageSize = 64
    /// Image channels (`nc`).
    public var channels = 1
    /// Length of z (`nz`).
    public var nz = 100
    public var ngf = 64
    public var ndf = 64
    public var batchSize = 64
    public var learningRate: Float = 2e-4
    public var beta1: Float = 0.5
    /// cgan: the class names, index = class (label-map values or sub-folder names); empty for dcgan.
    public var classNames: [String] = []
    /// cgan: length of the generator's class embedding, concatenated to z.
    public var embeddingDimension = 10
    /// cgan: the discriminator's class-embedding channels, concatenated to the image.
    public var labelChannels = 1
    /// How patch units map to [−1, 1]; samples are written back in those units.
    public var intensity: IntensityRange = .gray8
    /// Seed of the weights, the noise and the batch order.
    public var seed: UInt64 = 0

    public init() {}

    public var classCount: Int { family == .cgan ? classNames.count : 0 }

    /// Every check of the configuration, in one place.
    public func validate() throws {
        guard imageSize % 16 == 0, (16...512).contains(imageSize) else { throw GANConfigurationError.imageSize(imageSize) }
        for (name, value, range) in [("channels", channels, 1...16), ("nz", nz, 1...4096), ("ngf", ngf, 1...1024),
                                     ("ndf", ndf, 1...1024), ("batch-size", batchSize, 2...4096),
                                     ("embedding-dimension", embeddingDimension, 1...4096),
                                     ("label-channels", labelChannels, 1...16)] where !range.contains(value) {
            throw GANConfigurationError.outOfRange(option: name, value: value, range: range)
        }
        guard learningRate.isFinite, learningRate > 0 else { throw GANConfigurationError.notPositive(option: "lr") }
        guard beta1 >= 0, beta1 < 1 else { throw GANConfigurationError.beta1(beta1) }
        if family == .cgan, classNames.count < 2 { throw GANConfigurationError.classes(classNames.count) }
        guard intensity.upper > intensity.lower, intensity.lower.isFinite, intensity.upper.isFinite else {
            throw GANConfigurationError.intensityRange(intensity)
        }
    }

    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// The fields that make two runs different (all but nothing: every field shapes the networks or the step).
    public func differences(from other: GANConfiguration) -> [String] {
        let a = (try? JSONSerialization.jsonObject(with: Data(jsonString().utf8))) as? [String: Any] ?? [:]
        let b = (try? JSONSerialization.jsonObject(with: Data(other.jsonString().utf8))) as? [String: Any] ?? [:]
        func text(_ value: Any?) -> String {
            guard let value else { return "none" }
            return (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]))
                .map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
        }
        return Set(a.keys).union(b.keys).sorted().compactMap { key in
            let x = text(a[key]), y = text(b[key])
            return x == y ? nil : "\(key): run \(x), given \(y)"
        }
    }
}
