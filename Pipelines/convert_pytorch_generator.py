#!/usr/bin/env python3
"""Convert a pytorch-CycleGAN-and-pix2pix generator (e.g. checkpoints/NAME/latest_net_G_A.pth, a state dict of a
ResnetGenerator trained with --netG resnet_9blocks or resnet_6blocks and --norm instance) into an MR2CT model file:
a safetensors file with the same tensor names ("model.1.weight", "model.10.conv_block.1.weight", ...) in float32
and a __metadata__ holding

  generator      JSON of MR2CT's GeneratorConfiguration, read off the tensor shapes
                 {"inputChannels", "outputChannels", "ngf", "residualBlocks", "dropout"}
  preprocessing  JSON of MR2CT's PreprocessingConfiguration: MR2CT's defaults with contextSlices = input channels,
                 unless --preprocessing gives a JSON object (its keys override the defaults)
  direction      "MR->CT" (G_A of a run trained with MR as domain A) unless --direction says otherwise
  format, source provenance.

Usage:
  python3 Pipelines/convert_pytorch_generator.py latest_net_G_A.pth model.safetensors \
      [--direction MR->CT] [--preprocessing '{"sliceSize": 256, "ctWindow": [-1024, 3000]}']
  mr2ct convert --model model.safetensors ...

With --family dcgan: a PyTorch examples/dcgan generator state dict (netG_epoch_N.pth: main.0 ... main.12
transposed convolutions and main.1 ... main.10 BatchNorm parameters and buffers running_mean, running_var,
num_batches_tracked) becomes an MR2CT GAN generator for `mr2ct gan sample`: the same names, float32 (the
BatchNorm count kept as I64), __metadata__ "gan" = MR2CT's GANConfiguration read off the shapes (nz, ngf, channels,
image size = 16 x the first kernel; 64 for the example's own network) with the intensity map -1..1 (the raw
generator output), "format" mr2ct-gan-1:
  python3 Pipelines/convert_pytorch_generator.py --family dcgan netG_epoch_24.pth G.safetensors
  mr2ct gan sample --model G.safetensors --noise z.safetensors --count 64 -o samples

With --family pix2pix: a pix2pix U-Net (checkpoints/NAME/latest_net_G.pth of --model pix2pix --netG unet_256 or
unet_128, --norm batch or instance): the same names ("model.model.0.weight", "model.model.1.model.1.weight", ...,
BatchNorm running statistics included, num_batches_tracked as I64), __metadata__ "architecture" "unet",
"generator" = MR2CT's UNetConfiguration read off the tensors (ngf, channels, downsamplings = num_downs, norm;
dropout as --dropout says, default on as pix2pix trains: it is inactive in conversion), "training" "paired":
  python3 Pipelines/convert_pytorch_generator.py --family pix2pix latest_net_G.pth model.safetensors
  mr2ct convert --model model.safetensors ...
Needs torch and safetensors (pip install torch safetensors). For --family cyclegan only state dicts of the
instance-norm ResNet generator are accepted; anything else (BatchNorm generators, U-Nets, missing or unexpected tensors) is refused
with a one-line reason. The file is written atomically (temporary file, then rename).
"""
import argparse
import json
import os
import re
import sys
import tempfile

DEFAULT_PREPROCESSING = {
    "plane": "axial",
    "contextSlices": 1,
    "sliceSize": 256,
    "ctWindow": [-1024.0, 3000.0],
    "mrNormalization": {"percentile": {"lower": 0.5, "upper": 99.5}},
    "minimumBodyFraction": 0.05,
}


class ConversionError(Exception):
    pass


def expected_shapes(cin, cout, ngf, blocks, dropout):
    """The state_dict keys and shapes of networks.ResnetGenerator(cin, cout, ngf, instance norm, n_blocks)."""
    shapes = {"model.1.weight": (ngf, cin, 7, 7), "model.1.bias": (ngf,)}
    index = 4
    for i in range(2):
        mult = 2 ** i
        shapes[f"model.{index}.weight"] = (ngf * mult * 2, ngf * mult, 3, 3)
        shapes[f"model.{index}.bias"] = (ngf * mult * 2,)
        index += 3
    dim = ngf * 4
    second = 6 if dropout else 5
    for _ in range(blocks):
        for conv in (1, second):
            shapes[f"model.{index}.conv_block.{conv}.weight"] = (dim, dim, 3, 3)
            shapes[f"model.{index}.conv_block.{conv}.bias"] = (dim,)
        index += 1
    for i in range(2):
        mult = 2 ** (2 - i)
        shapes[f"model.{index}.weight"] = (ngf * mult, ngf * mult // 2, 3, 3)  # ConvTranspose2d: in, out, k, k
        shapes[f"model.{index}.bias"] = (ngf * mult // 2,)
        index += 3
    index += 1  # ReflectionPad2d(3)
    shapes[f"model.{index}.weight"] = (cout, ngf, 7, 7)
    shapes[f"model.{index}.bias"] = (cout,)
    return shapes


def infer_configuration(state):
    """GeneratorConfiguration from a state dict's keys and shapes; raises ConversionError when it is not an
    instance-norm ResnetGenerator of pytorch-CycleGAN-and-pix2pix."""
    if "model.1.weight" not in state:
        raise ConversionError("no tensor model.1.weight: not a pytorch-CycleGAN-and-pix2pix ResnetGenerator")
    first = state["model.1.weight"]
    if first.dim() != 4 or tuple(first.shape[2:]) != (7, 7):
        raise ConversionError(f"model.1.weight has shape {tuple(first.shape)}, not the 7x7 input convolution of a ResnetGenerator")
    if "model.1.bias" not in state or any(k.endswith("running_mean") for k in state):
        raise ConversionError("the generator uses BatchNorm (--norm batch); MR2CT implements --norm instance only")
    ngf, cin = int(first.shape[0]), int(first.shape[1])
    block_indices = sorted({int(m.group(1)) for k in state for m in [re.match(r"model\.(\d+)\.conv_block\.", k)] if m})
    blocks = len(block_indices)
    if block_indices != list(range(10, 10 + blocks)):
        raise ConversionError(f"residual blocks at model indices {block_indices}, expected 10...")
    dropout = any(re.match(r"model\.\d+\.conv_block\.6\.weight$", k) for k in state)
    last = [k for k in state if re.match(r"model\.\d+\.weight$", k)]
    final_key = max(last, key=lambda k: int(k.split(".")[1]))
    cout = int(state[final_key].shape[0])
    config = {"inputChannels": cin, "outputChannels": cout, "ngf": ngf, "residualBlocks": blocks, "dropout": dropout}
    expected = expected_shapes(cin, cout, ngf, blocks, dropout)
    _check_state(state, expected, f"a ResnetGenerator({cin}, {cout}, ngf={ngf}, n_blocks={blocks})")
    return config, expected


def _preprocessing(config, preprocessing):
    """The model's preprocessing: the defaults, the generator's input channels as context slices, then the user's
    overrides, which must agree with the generator's input channels."""
    prep = dict(DEFAULT_PREPROCESSING)
    prep["contextSlices"] = config["inputChannels"]
    if preprocessing:
        prep.update(preprocessing)
    if prep["contextSlices"] != config["inputChannels"]:
        raise ConversionError(f"preprocessing contextSlices {prep['contextSlices']} does not match the generator's "
                              f"{config['inputChannels']} input channels")
    return prep


def _check_state(state, expected, what):
    """Raises ConversionError naming `what` when `state` lacks a tensor of `expected` (key -> shape), holds one it
    does not expect, or holds one with another shape."""
    missing = sorted(set(expected) - set(state), key=_natural)
    unexpected = sorted(set(state) - set(expected), key=_natural)
    wrong = [f"{k} {tuple(state[k].shape)} (expected {expected[k]})" for k in sorted(set(expected) & set(state), key=_natural)
             if tuple(state[k].shape) != expected[k]]
    problems = (["missing " + ", ".join(missing)] if missing else []) + (["unexpected " + ", ".join(unexpected)] if unexpected else []) \
        + (["wrong shapes " + ", ".join(wrong)] if wrong else [])
    if problems:
        raise ConversionError(f"not {what}: " + "; ".join(problems))


def _natural(key):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def load_state_dict(path):
    import torch
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - every failure becomes a one-line message
        raise ConversionError(f"cannot read a PyTorch state dict: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise ConversionError("the file does not hold a state dict of tensors")
    state = dict(state)
    state.pop("_metadata", None)
    # Saved from nn.DataParallel: keys start with "module.".
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    # The reference's load_networks drops InstanceNorm running statistics saved by PyTorch < 0.4 (networks with
    # track_running_stats=False have none); do the same.
    for key in [k for k in state if re.search(r"\.(running_mean|running_var|num_batches_tracked)$", k)]:
        prefix = key.rsplit(".", 1)[0]
        if prefix + ".weight" not in state:
            del state[key]
    return state


def convert(pth_path, out_path, direction="MR->CT", preprocessing=None):
    import torch
    from safetensors.torch import save_file

    state = load_state_dict(pth_path)
    config, expected = infer_configuration(state)
    prep = _preprocessing(config, preprocessing)
    tensors = {}
    for key in sorted(expected, key=_natural):
        t = state[key].detach().to(torch.float32).contiguous()
        if not torch.isfinite(t).all():
            raise ConversionError(f"tensor {key} holds NaN or infinite values")
        tensors[key] = t
    metadata = {
        "generator": json.dumps(config, separators=(",", ":")),
        "preprocessing": json.dumps(prep, separators=(",", ":")),
        "direction": direction,
        "format": "mr2ct-checkpoint-1",
        "source": "pytorch-CycleGAN-and-pix2pix " + os.path.basename(pth_path),
    }
    _atomic_save(save_file, tensors, out_path, metadata)
    return config, prep


def dcgan_expected_shapes(nz, ngf, nc, k0):
    """state_dict keys and shapes of examples/dcgan's Generator (pytorch_dcgan_networks.Generator)."""
    widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
    shapes = {"main.0.weight": (nz, widths[0], k0, k0)}
    for i, w in enumerate(widths):
        bn = 3 * i + 1
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"main.{bn}.{name}"] = (w,)
        shapes[f"main.{bn}.num_batches_tracked"] = ()
        if i > 0:
            shapes[f"main.{3 * i}.weight"] = (widths[i - 1], w, 4, 4)
    shapes["main.12.weight"] = (ngf, nc, 4, 4)
    return shapes


def convert_dcgan(pth_path, out_path):
    """An examples/dcgan generator state dict -> MR2CT GAN generator file; returns the GAN configuration."""
    import torch
    from safetensors.torch import save_file

    state = load_state_dict(pth_path)
    if "main.0.weight" not in state or state["main.0.weight"].dim() != 4:
        raise ConversionError("no 4-D tensor main.0.weight: not a PyTorch examples/dcgan Generator")
    first = state["main.0.weight"]
    nz, k0 = int(first.shape[0]), int(first.shape[2])
    if first.shape[1] % 8 != 0 or first.shape[2] != first.shape[3]:
        raise ConversionError(f"main.0.weight has shape {tuple(first.shape)}, not nz x 8*ngf x k x k")
    ngf = int(first.shape[1]) // 8
    if "main.12.weight" not in state:
        raise ConversionError("no tensor main.12.weight (the output layer of examples/dcgan's Generator)")
    nc = int(state["main.12.weight"].shape[1])
    expected = dcgan_expected_shapes(nz, ngf, nc, k0)
    _check_state(state, expected, f"an examples/dcgan Generator(nz={nz}, ngf={ngf}, nc={nc})")
    tensors = _checked_tensors(state, expected)
    config = {"family": "dcgan", "imageSize": 16 * k0, "channels": nc, "nz": nz, "ngf": ngf, "ndf": ngf,
              "batchSize": 64, "learningRate": 0.0002, "beta1": 0.5, "classNames": [], "embeddingDimension": 10,
              "labelChannels": 1, "intensity": {"lower": -1.0, "upper": 1.0}, "seed": 0}
    metadata = {"gan": json.dumps(config, separators=(",", ":")), "format": "mr2ct-gan-1", "role": "G",
                "family": "dcgan", "source": "PyTorch examples/dcgan " + os.path.basename(pth_path)}
    _atomic_save(save_file, tensors, out_path, metadata)
    return config


def infer_unet_configuration(state, dropout=True):
    """UNetConfiguration from a pix2pix UnetGenerator state dict; the expected keys and shapes come from
    pytorch_reference_networks.UnetGenerator built with the inferred settings (the reference's module structure)."""
    import torch.nn as nn
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pytorch_reference_networks import UnetGenerator, batch_norm, instance_norm
    first = state.get("model.model.0.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[2:]) != (4, 4):
        raise ConversionError("no 4x4 tensor model.model.0.weight: not a pix2pix UnetGenerator")
    ngf, cin = int(first.shape[0]), int(first.shape[1])
    last = state.get("model.model.3.weight")
    if last is None or last.dim() != 4:
        raise ConversionError("no tensor model.model.3.weight (the U-Net's outermost up-convolution)")
    cout = int(last.shape[1])
    levels = len([k for k in state if re.fullmatch(r"model\.model\.1(\.model\.3)*\.model\.1\.weight", k)])
    num_downs = levels + 1
    if not 5 <= num_downs <= 9:
        raise ConversionError(f"{num_downs} down-sampling levels; MR2CT's U-Net has 5 to 9 (unet_128: 7, unet_256: 8)")
    norm = "batch" if any(k.endswith("running_mean") for k in state) else "instance"
    reference = UnetGenerator(cin, cout, num_downs, ngf=ngf, norm_layer=batch_norm() if norm == "batch" else instance_norm())
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    _check_state(state, expected, f"a UnetGenerator({cin}, {cout}, num_downs={num_downs}, ngf={ngf}, norm={norm})")
    config = {"inputChannels": cin, "outputChannels": cout, "ngf": ngf, "downsamplings": num_downs, "dropout": bool(dropout),
              "norm": norm}
    return config, expected


def convert_pix2pix(pth_path, out_path, preprocessing=None, dropout=True):
    import torch
    from safetensors.torch import save_file
    state = load_state_dict(pth_path)
    config, expected = infer_unet_configuration(state, dropout)
    prep = _preprocessing(config, preprocessing)
    side = 1 << config["downsamplings"]
    if prep["sliceSize"] % side != 0:
        raise ConversionError(f"preprocessing sliceSize {prep['sliceSize']} is not a multiple of {side}, which this U-Net needs")
    tensors = _checked_tensors(state, expected)
    metadata = {"architecture": "unet", "generator": json.dumps(config, separators=(",", ":")),
                "preprocessing": json.dumps(prep, separators=(",", ":")), "direction": "MR->CT", "training": "paired",
                "format": "mr2ct-paired-run-1", "role": "G",
                "source": "pytorch-CycleGAN-and-pix2pix pix2pix " + os.path.basename(pth_path)}
    _atomic_save(save_file, tensors, out_path, metadata)
    return config, prep


def _checked_tensors(state, expected):
    """The expected tensors of a state dict in natural key order: float32 (BatchNorm counts kept as I64), each
    checked to be finite."""
    import torch
    tensors = {}
    for key in sorted(expected, key=_natural):
        t = state[key].detach().contiguous()
        if key.endswith("num_batches_tracked"):
            tensors[key] = t.to(torch.int64)
            continue
        t = t.to(torch.float32)
        if not torch.isfinite(t).all():
            raise ConversionError(f"tensor {key} holds NaN or infinite values")
        tensors[key] = t
    return tensors


def _atomic_save(save_file, tensors, out_path, metadata):
    directory = os.path.dirname(os.path.abspath(out_path))
    fd, temporary = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(out_path), dir=directory)
    os.close(fd)
    try:
        save_file(tensors, temporary, metadata=metadata)
        with open(temporary, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, out_path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pth", help="the PyTorch generator state dict (latest_net_G_A.pth)")
    parser.add_argument("output", help="the MR2CT model file to write (.safetensors)")
    parser.add_argument("--family", default="cyclegan", choices=["cyclegan", "pix2pix", "dcgan"],
                        help="cyclegan: a pytorch-CycleGAN-and-pix2pix ResnetGenerator (default); "
                             "pix2pix: its UnetGenerator (unet_128/unet_256); "
                             "dcgan: a PyTorch examples/dcgan Generator, for mr2ct gan sample")
    parser.add_argument("--dropout", default="on", choices=["on", "off"],
                        help="pix2pix: whether the U-Net was trained with dropout (recorded; inactive in conversion)")
    parser.add_argument("--direction", default="MR->CT", choices=["MR->CT", "CT->MR"],
                        help="what the generator translates (G_A of an MR->CT run: MR->CT)")
    parser.add_argument("--preprocessing", default=None,
                        help="JSON object overriding MR2CT's preprocessing defaults, e.g. '{\"sliceSize\": 256}'")
    args = parser.parse_args(argv)
    try:
        if args.family == "dcgan":
            gan = convert_dcgan(args.pth, args.output)
            print(json.dumps({"output": args.output, "family": "dcgan", "gan": gan}))
            return 0
        preprocessing = None
        if args.preprocessing:
            try:
                preprocessing = json.loads(args.preprocessing)
            except json.JSONDecodeError as error:
                raise ConversionError(f"--preprocessing is not JSON: {error}")
            if not isinstance(preprocessing, dict):
                raise ConversionError("--preprocessing must be a JSON object")
            unknown = set(preprocessing) - set(DEFAULT_PREPROCESSING) - {"targetSpacing"}
            if unknown:
                raise ConversionError(f"--preprocessing has unknown keys {sorted(unknown)}")
        if args.family == "pix2pix":
            config, prep = convert_pix2pix(args.pth, args.output, preprocessing, args.dropout == "on")
            print(json.dumps({"output": args.output, "family": "pix2pix", "generator": config, "preprocessing": prep}))
            return 0
        config, prep = convert(args.pth, args.output, args.direction, preprocessing)
    except ConversionError as error:
        print(f"convert_pytorch_generator: {args.pth}: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"convert_pytorch_generator: {error.filename or args.output}: {error.strerror}", file=sys.stderr)
        return 1
    print(json.dumps({"output": args.output, "generator": config, "preprocessing": prep, "direction": args.direction}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
