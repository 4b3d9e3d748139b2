#!/usr/bin/env python3
"""Goldens for the residual-block convolution at realistic channel counts (the Winograd path of Conv2d).

    cd Tests/TestSupport/Fixtures/torch && python3 make_winograd_goldens.py

Cases: nn.ReflectionPad2d(1) + nn.Conv2d(C, C', 3) and nn.Conv2d(C, C', 3, padding=1) (zeros), on even and odd
image sizes, batch 2. Reference values come from PyTorch in float64 on float32 inputs, stored as F32; the scalar
differentiated is sum(output * G) for a random G. "torch_f32_error" in the metadata is PyTorch's own float32 error.

File winograd.safetensors: "<case>.{input,weight,bias,output,grad_output,grad_input,grad_weight,grad_bias}",
metadata "cases" = [{name, inputChannels, outputChannels, height, width, paddingMode, torch_f32_error}].
"""
import json
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
GEN = torch.Generator().manual_seed(20261128)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale).to(torch.float32)


def run(case, x, w, b, g, dtype):
    pad = nn.ReflectionPad2d(1) if case["paddingMode"] == "reflect" else nn.Identity()
    conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=0 if case["paddingMode"] == "reflect" else 1).to(dtype)
    with torch.no_grad():
        conv.weight.copy_(w.to(dtype))
        conv.bias.copy_(b.to(dtype))
    xi = x.to(dtype).clone().requires_grad_(True)
    y = conv(pad(xi))
    (y * g.to(dtype)).sum().backward()
    return {"output": y.detach(), "grad_input": xi.grad, "grad_weight": conv.weight.grad, "grad_bias": conv.bias.grad}


def main():
    cases = [
        {"name": "reflect_48_40_16x16", "inputChannels": 48, "outputChannels": 40, "height": 16, "width": 16, "paddingMode": "reflect"},
        {"name": "reflect_32_32_13x10", "inputChannels": 32, "outputChannels": 32, "height": 13, "width": 10, "paddingMode": "reflect"},
        {"name": "zeros_40_36_9x11", "inputChannels": 40, "outputChannels": 36, "height": 9, "width": 11, "paddingMode": "zeros"},
    ]
    tensors = {}
    for case in cases:
        cin, cout, h, w_ = case["inputChannels"], case["outputChannels"], case["height"], case["width"]
        x = randn(2, cin, h, w_)
        w = randn(cout, cin, 3, 3, scale=(1.0 / (9 * cin)) ** 0.5)
        b = randn(cout, scale=0.1)
        g = randn(2, cout, h, w_)
        ref = run(case, x, w, b, g, torch.float64)
        f32 = run(case, x, w, b, g, torch.float32)
        case["torch_f32_error"] = max(
            float((f32[k].double() - ref[k]).abs().max() / ref[k].abs().max()) for k in ref)
        n = case["name"]
        tensors.update({f"{n}.input": x, f"{n}.weight": w, f"{n}.bias": b, f"{n}.grad_output": g})
        tensors.update({f"{n}.{k}": v.to(torch.float32).contiguous() for k, v in ref.items()})
    save_file(tensors, str(HERE / "winograd.safetensors"), metadata={"cases": json.dumps(cases)})
    print("wrote winograd.safetensors:", [(c["name"], c["torch_f32_error"]) for c in cases])


if __name__ == "__main__":
    main()
