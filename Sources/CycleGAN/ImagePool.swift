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

    /// The images the discriminator should see in place of a batch `images` (N × C × H × W): as the reference's
    /// `ImagePool.query`, each image of the batch is decided on its own, in batch order (stored while the pool
    /// fills, else with probability ½ swapped for a stored one), and the answers are concatenated. A batch of one is
    /// the image itself or a fresh tensor holding an older one.
    public mutating func query(_ images: Tensor) -> Tensor {
        if capacity <= 0 { return images }
        let n = images.shape.first ?? 1
        if n <= 1 { return query(image: images) }
        var sampleShape = images.shape
        sampleShape[0] = 1
        let per = images.count / n
        let out = Tensor(shape: images.shape)
        for k in 0..<n {
            let one = Tensor(shape: sampleShape, values: Array(images.data[(k * per)..<((k + 1) * per)]))
            let answer = query(image: one)
            (out.data.baseAddress! + k * per).update(from: answer.data.baseAddress!, count: per)
        }
        return out
    }

    /// One image (1 × C × H × W): the reference's per-image decision.
    private mutating func query(image: Tensor) -> Tensor {
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
