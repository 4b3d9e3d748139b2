import NeuralNetwork

extension CycleGANModel {
    /// Sets the arithmetic of all four networks' convolutions (`Precision`). With `.bf16` a training step is mixed
    /// precision: bf16 convolution operands, float32 master weights, Adam state, normalisation and reductions.
    public func setPrecision(_ precision: Precision) {
        for network in networks { network.setPrecision(precision) }
    }
}
