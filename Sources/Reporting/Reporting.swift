// Reporting module: see README.md, "Architecture".
