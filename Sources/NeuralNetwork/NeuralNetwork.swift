// NeuralNetwork module: see README.md, "Architecture".
