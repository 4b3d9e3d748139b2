// Conversion module: see README.md, "Architecture".
