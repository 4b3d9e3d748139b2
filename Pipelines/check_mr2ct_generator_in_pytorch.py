#!/usr/bin/env python3
"""Generator interop between MR2CT and the reference PyTorch ResnetGenerator (pytorch-CycleGAN-and-pix2pix).

MR2CT -> PyTorch: a generator written by MR2CT loads with load_state_dict(strict=True) and gives MR2CT's output.

    MR2CT_INTEROP_DIR=/tmp/interop swift test --filter PyTorchInteropTests
    python3 Pipelines/check_mr2ct_generator_in_pytorch.py /tmp/interop/mr2ct_generator.safetensors \
        /tmp/interop/mr2ct_generator_io.safetensors

PyTorch -> MR2CT at any size: write a random reference generator as a .pth, convert it with
convert_pytorch_generator.py, and store an input with PyTorch's output; the same Swift test then loads it into
MR2CT and compares (it looks for pytorch_generator.safetensors in $MR2CT_INTEROP_DIR):

    python3 Pipelines/check_mr2ct_generator_in_pytorch.py --export /tmp/interop --ngf 64 --blocks 9 --size 256

Prints one JSON line; exit status 0 when max |PyTorch - MR2CT| <= 1e-4, 1 otherwise.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytorch_reference_networks import ResnetGenerator, init_weights  # noqa: E402
from convert_pytorch_generator import convert  # noqa: E402


def check(weights, io):
    with safe_open(weights, "pt") as f:
        metadata = f.metadata() or {}
    config = json.loads(metadata["generator"])
    net = ResnetGenerator(config["inputChannels"], config["outputChannels"], ngf=config["ngf"],
                          use_dropout=config.get("dropout", False), n_blocks=config["residualBlocks"])
    state = load_file(weights)
    dtypes = sorted({str(t.dtype) for t in state.values()})
    net.load_state_dict(state, strict=True)  # raises on missing/unexpected keys or shape mismatch
    net.eval()
    tensors = load_file(io)
    with torch.no_grad():
        output = net(tensors["input"])
    difference = (output - tensors["output"]).abs().max().item()
    ok = difference <= 1e-4
    print(json.dumps({"weights": weights, "generator": config, "input": list(tensors["input"].shape),
                      "tensors": len(state), "dtypes": dtypes, "load_state_dict_strict": "ok",
                      "max_abs_difference": difference, "pass": ok}))
    return 0 if ok else 1


def export(directory, ngf, blocks, size, channels):
    os.makedirs(directory, exist_ok=True)
    torch.manual_seed(5)
    net = ResnetGenerator(channels, 1, ngf=ngf, n_blocks=blocks)
    init_weights(net, random_biases=True)
    pth = os.path.join(directory, "latest_net_G_A.pth")
    torch.save(net.state_dict(), pth)
    convert(pth, os.path.join(directory, "pytorch_generator.safetensors"))
    x = torch.rand(1, channels, size, size) * 2 - 1
    net.eval()
    with torch.no_grad():
        y = net(x)
    save_file({"input": x.contiguous(), "output": y.contiguous()}, os.path.join(directory, "pytorch_generator_io.safetensors"))
    print(json.dumps({"exported": directory, "ngf": ngf, "blocks": blocks, "size": size, "channels": channels}))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("weights", nargs="?")
    parser.add_argument("io", nargs="?")
    parser.add_argument("--export")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=1)
    a = parser.parse_args()
    if a.export:
        sys.exit(export(a.export, a.ngf, a.blocks, a.size, a.channels))
    sys.exit(check(a.weights, a.io))
