import NeuralNetwork
import MR2CTSupport

/// The history of generated images that the discriminators see (Shrivastava et al. 2017; pytorch-CycleGAN-and-
/// pix2pix `ImagePool`): until `capacity` images are stored each new image is stored and returned; afterwards,
/// with probability 1/2 a uniformly chosen stored image is returned and replaced by the new one, else the new
/// image is returned. Seeded, and its whole state (images and generator) is Codable for checkpoints.
public struct ImagePool: Codable, Sendable {
    public let capacity: Int
    /// The stored images, each `imageShape`, in slot order.
    public private(set) var images: [[Float]]
    public private(set) var imageShape: [Int]
    public var random: SeededRandom

    public init(capacity: Int = 50, seed: UInt64) {
        self.capacity = capacity
        images = []
        imageShape = []
        random = SeededRandom(seed: seed)
    }

    /// Restores a saved state.
    public init(capacity: Int, images: [[Float]], imageShape: [Int], random: SeededRandom) {
        self.capacity = capacity
        self.images = images
        self.imageShape = imageShape
        self.random = random
    }

    /// The image the discriminator should see in place of `image` (a fresh tensor when an older one is returned).
    public mutating func query(_ image: Tensor) -> Tensor {
        if capacity <= 0 { return image }
        if images.count < capacity {
            images.append(image.toArray())
            imageShape = image.shape
            return image
        }
        if random.nextUnitDouble() > 0.5 {
            let slot = Int(random.next() % UInt64(capacity))
            let old = images[slot]
            images[slot] = image.toArray()
            return Tensor(shape: imageShape, values: old)
        }
        return image
    }
}
