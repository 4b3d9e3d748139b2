"""Makes the safetensors reader's reference fixtures with Python's `safetensors` (the reference implementation).

Run from this folder:  python3 make_fixtures.py
Writes dtypes.safetensors: the same values stored as F32, F16, BF16, F64 (plus an I64 and a scalar), with
metadata; and expected.json with the values each tensor must decode to (as float32) and the metadata.
"""
import json
import numpy as np
import torch
from safetensors.torch import save_file

values = torch.tensor([[0.0, -1.5, 3.25], [65504.0, 1e-7, -2.0e-5]], dtype=torch.float64)  # includes F16 max and subnormals
tensors = {
    "f32": values.to(torch.float32),
    "f16": values.to(torch.float16),
    "bf16": values.to(torch.bfloat16),
    "f64": values,
    "i64": torch.tensor([1, -2, 3], dtype=torch.int64),
    "scalar": torch.tensor(7.5, dtype=torch.float32),
    "empty": torch.zeros((0, 3), dtype=torch.float32),
    "layer.0.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2) / 8,
}
metadata = {"format": "pt", "note": "unicode é ✓ and \"quotes\"\nnewline"}
save_file(tensors, "dtypes.safetensors", metadata=metadata)

expected = {
    name: {
        "shape": list(t.shape),
        # What each stored element is as float32 (F64 rounded to nearest, F16/BF16 exactly).
        "values": t.to(torch.float32).flatten().tolist() if t.is_floating_point() else None,
        "dtype": {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                  torch.int64: "I64"}[t.dtype],
    }
    for name, t in tensors.items()
}
with open("expected.json", "w") as f:
    json.dump({"tensors": expected, "metadata": metadata}, f, indent=1)
