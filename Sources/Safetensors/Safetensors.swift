// Safetensors module: see README.md, "Architecture".
