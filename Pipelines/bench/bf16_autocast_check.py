#!/usr/bin/env python3
"""PyTorch's own bf16 autocast error on the golden generator (Tests/TestSupport/Fixtures/torch), the reference for
PrecisionTests: output and per-parameter gradient differences bf16 vs f32. python3 Pipelines/bench/bf16_autocast_check.py"""
import json, struct, sys, torch, numpy as np
sys.path.insert(0, "Pipelines")
from pytorch_reference_networks import ResnetGenerator
def read(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8+n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; out[k] = torch.from_numpy(np.frombuffer(b[8+n+s:8+n+e], dtype=np.float32).reshape(v["shape"]).copy())
    return out, h.get("__metadata__", {})
w, _ = read("Tests/TestSupport/Fixtures/torch/generator_weights.safetensors")
io, meta = read("Tests/TestSupport/Fixtures/torch/generator_io.safetensors")
cfg = json.loads(meta["generator"]); print(cfg)
g = ResnetGenerator(1, 1, ngf=cfg["ngf"], n_blocks=cfg["residualBlocks"]) if True else None
g.load_state_dict(w, strict=False)
x = io["input"]
torch.manual_seed(0)
def run(bf16):
    g.zero_grad(); xx = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = g(xx)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(11))
    y.float().backward(dy)
    return y.float().detach(), [xx.grad] + [p.grad.clone() for p in g.parameters()], [n for n, _ in g.named_parameters()]
y32, g32, names = run(False); y16, g16, _ = run(True)
print("output max", (y32-y16).abs().max().item(), "mean", (y32-y16).abs().mean().item())
for n, a, b in zip(["input"]+names, g32, g16):
    m = a.abs().max().item()
    if m > 1e-3: print(n, ((a-b).abs().max()/m).item())
