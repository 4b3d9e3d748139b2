#!/usr/bin/env python3
"""Checks that a generator written by MR2CT loads into the reference PyTorch ResnetGenerator
(pytorch-CycleGAN-and-pix2pix networks.py) with load_state_dict(strict=True) and gives MR2CT's output.

    MR2CT_INTEROP_DIR=/tmp/interop swift test --filter PyTorchInteropTests
    python3 Pipelines/check_mr2ct_generator_in_pytorch.py /tmp/interop/mr2ct_generator.safetensors \
        /tmp/interop/mr2ct_generator_io.safetensors

Prints one JSON line; exit status 0 when max |PyTorch − MR2CT| ≤ 1e-4, 1 otherwise.
"""
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytorch_reference_networks import ResnetGenerator  # noqa: E402


def main(weights, io):
    with safe_open(weights, "pt") as f:
        metadata = f.metadata() or {}
    config = json.loads(metadata["generator"])
    net = ResnetGenerator(config["inputChannels"], config["outputChannels"], ngf=config["ngf"],
                          use_dropout=config.get("dropout", False), n_blocks=config["residualBlocks"])
    state = load_file(weights)
    dtypes = sorted({str(t.dtype) for t in state.values()})
    result = net.load_state_dict(state, strict=True)  # raises on missing/unexpected keys or shape mismatch
    net.eval()
    tensors = load_file(io)
    with torch.no_grad():
        output = net(tensors["input"])
    difference = (output - tensors["output"]).abs().max().item()
    ok = difference <= 1e-4 and not result.missing_keys and not result.unexpected_keys
    print(json.dumps({"weights": weights, "generator": config, "tensors": len(state), "dtypes": dtypes,
                      "load_state_dict_strict": "ok", "max_abs_difference": difference, "pass": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
