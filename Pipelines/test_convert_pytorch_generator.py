#!/usr/bin/env python3
"""Self-test of convert_pytorch_generator.py on generated .pth files (needs torch + safetensors; not run in CI).

    python3 Pipelines/test_convert_pytorch_generator.py
"""
import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from pytorch_reference_networks import ResnetGenerator, init_weights  # noqa: E402

SCRIPT = str(HERE / "convert_pytorch_generator.py")


def run(*args):
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print("ok  ", message)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        # 1. resnet_9blocks with 3 input channels (2.5-D), ngf 16: converts, loads strictly back, same output.
        net = ResnetGenerator(3, 1, ngf=16, n_blocks=9)
        init_weights(net, random_biases=True)
        torch.save(net.state_dict(), t / "latest_net_G_A.pth")
        code, out, err = run(str(t / "latest_net_G_A.pth"), str(t / "g.safetensors"))
        check(code == 0, f"resnet_9blocks converts (stderr: {err.strip()})")
        with safe_open(str(t / "g.safetensors"), "pt") as f:
            meta = f.metadata()
        config = json.loads(meta["generator"])
        prep = json.loads(meta["preprocessing"])
        check(config == {"inputChannels": 3, "outputChannels": 1, "ngf": 16, "residualBlocks": 9, "dropout": False},
              f"generator configuration read off the shapes: {config}")
        check(prep["contextSlices"] == 3 and prep["sliceSize"] == 256 and meta["direction"] == "MR->CT",
              "preprocessing defaults with contextSlices = input channels, direction MR->CT")
        copy = ResnetGenerator(3, 1, ngf=16, n_blocks=9)
        copy.load_state_dict(load_file(str(t / "g.safetensors")), strict=True)
        x = torch.rand(1, 3, 64, 64) * 2 - 1
        with torch.no_grad():
            check(torch.equal(copy(x), net(x)), "converted weights load strictly into the reference and give the same output")
        check(not [p for p in os.listdir(t) if p.startswith(".tmp-")], "no temporary file left")

        # 2. DataParallel prefixes, legacy InstanceNorm running stats, wrapper dict and dropout are handled.
        net = ResnetGenerator(1, 1, ngf=8, n_blocks=6, use_dropout=True)
        state = {"module." + k: v for k, v in net.state_dict().items()}
        state["module.model.2.running_mean"] = torch.zeros(8)
        state["module.model.2.running_var"] = torch.ones(8)
        torch.save({"state_dict": state}, t / "dp.pth")
        code, out, err = run(str(t / "dp.pth"), str(t / "dp.safetensors"), "--direction", "CT->MR",
                             "--preprocessing", '{"sliceSize": 128, "ctWindow": [-1000, 2000]}')
        check(code == 0, f"DataParallel + legacy running stats + dropout convert ({err.strip()})")
        with safe_open(str(t / "dp.safetensors"), "pt") as f:
            meta = f.metadata()
        check(json.loads(meta["generator"])["dropout"] is True and json.loads(meta["generator"])["residualBlocks"] == 6,
              "dropout and 6 blocks detected")
        prep = json.loads(meta["preprocessing"])
        check(prep["sliceSize"] == 128 and prep["ctWindow"] == [-1000, 2000] and meta["direction"] == "CT->MR",
              "--preprocessing and --direction are stored")

        # 3. Refusals: BatchNorm generator, not a generator, truncated file, bad options. One line, exit 1.
        bn = ResnetGenerator(1, 1, ngf=8, n_blocks=2, norm_layer=nn.BatchNorm2d)
        torch.save(bn.state_dict(), t / "bn.pth")
        torch.save({"weight": torch.zeros(3, 3)}, t / "other.pth")
        (t / "trunc.pth").write_bytes((t / "latest_net_G_A.pth").read_bytes()[:1000])
        broken = dict(net.state_dict())
        del broken["model.10.conv_block.1.weight"]
        broken["model.10.conv_block.6.weight"] = torch.zeros(2, 2)
        torch.save(broken, t / "broken.pth")
        for name, args, fragment in (
            ("BatchNorm", ["bn.pth"], "BatchNorm"),
            ("unrelated state dict", ["other.pth"], "no tensor model.1.weight"),
            ("truncated .pth", ["trunc.pth"], "cannot read a PyTorch state dict"),
            ("missing tensors", ["broken.pth"], "missing model.10.conv_block.1.weight"),
            ("missing file", ["absent.pth"], "cannot read"),
            ("context mismatch", ["latest_net_G_A.pth", "--preprocessing", '{"contextSlices": 1}'], "does not match"),
            ("unknown preprocessing key", ["latest_net_G_A.pth", "--preprocessing", '{"size": 1}'], "unknown keys"),
        ):
            pth, *rest = args
            code, out, err = run(str(t / pth), str(t / "out.safetensors"), *rest)
            lines = err.strip().splitlines()
            check(code == 1 and len(lines) == 1 and fragment in lines[0], f"{name}: exit {code}, {err.strip()}")
        check(not (t / "out.safetensors").exists(), "nothing written on failure")

        # 4. --family dcgan: an examples/dcgan generator (64 x 64, the example's own network) converts with its
        #    BatchNorm buffers, loads strictly back, and a CycleGAN generator or a damaged one is refused.
        from pytorch_dcgan_networks import Generator as DCGANGenerator
        dc = DCGANGenerator(nz=100, ngf=16, nc=3, side=64)
        torch.save(dc.state_dict(), t / "netG_epoch_24.pth")
        code, out, err = run("--family", "dcgan", str(t / "netG_epoch_24.pth"), str(t / "G.safetensors"))
        check(code == 0, f"examples/dcgan generator converts ({err.strip()})")
        with safe_open(str(t / "G.safetensors"), "pt") as f:
            gan = json.loads(f.metadata()["gan"])
            tracked = f.get_tensor("main.1.num_batches_tracked")
        check((gan["nz"], gan["ngf"], gan["channels"], gan["imageSize"], gan["family"]) == (100, 16, 3, 64, "dcgan"),
              f"GAN configuration read off the shapes: {gan}")
        check(tracked.dtype == torch.int64, "num_batches_tracked kept as I64")
        back = DCGANGenerator(nz=100, ngf=16, nc=3, side=64)
        back.load_state_dict(load_file(str(t / "G.safetensors")), strict=True)
        check(True, "converted dcgan file loads strictly into examples/dcgan's Generator")
        for name, pth, fragment in (("CycleGAN generator as dcgan", "latest_net_G_A.pth", "main.0.weight"),
                                    ("dcgan missing a buffer", "dc_broken.pth", "missing main.4.running_var")):
            if pth == "dc_broken.pth":
                broken = dict(dc.state_dict())
                del broken["main.4.running_var"]
                torch.save(broken, t / pth)
            code, out, err = run("--family", "dcgan", str(t / pth), str(t / "out.safetensors"))
            lines = err.strip().splitlines()
            check(code == 1 and len(lines) == 1 and fragment in lines[0], f"{name}: exit {code}, {err.strip()}")
    print("all converter checks passed")


if __name__ == "__main__":
    main()
