// Preprocessing module: see README.md, "Architecture".
