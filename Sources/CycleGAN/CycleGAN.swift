// CycleGAN module: see README.md, "Architecture".
