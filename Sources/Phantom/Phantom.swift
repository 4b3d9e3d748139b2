// Phantom module: see README.md, "Architecture".
