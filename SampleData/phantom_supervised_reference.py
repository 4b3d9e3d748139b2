"""How well can this generator do when it is *given* the answers? A paired, supervised reference on the phantoms.

The bundled CycleGAN learns MR→CT from unpaired folders. This script trains the same ResNet generator
(Pipelines/pytorch_reference_networks.py) with paired MR/CT phantom slices and an L1 loss, the most direct
supervision there is, then converts the five held-out subjects, so that `mr2ct evaluate` can score it exactly as
it scores the bundled model. What it reaches bounds what an unpaired model of this size can be expected to reach
on these phantoms (quoted in SampleData/model/README.md).

Optional, needs torch, numpy and nibabel; nothing in the build or the tests uses it. From the package root:

    mr2ct=.build/release/mr2ct
    $mr2ct phantom --seed 1 --first 4001 --subjects 24 --outputs mr,ct --out paired
    python3 SampleData/phantom_supervised_reference.py --data paired --minutes 20 --context 3 --out supervised-sct
    $mr2ct evaluate --pred supervised-sct --ref SampleData/phantoms/heldout/ct

Slices are axial (the phantoms' third axis), 80 × 96 padded to 96 × 96; MR scaled by the 0.5th/99.5th percentiles
of the head to [−1, 1] and CT window [−1024, 3000] to [−1, 1], as `mr2ct train` does, except that the head here is
simply the voxels above 10 % of the 99th percentile (mr2ct uses its body mask). Adam 2e-4 (β1 0.5), batch 8, random left-right flips, constant rate for the first half of the
time budget, then linear decay to 0; `--threads` (default 2).
"""
import argparse
import pathlib
import sys
import time

import nibabel as nib
import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Pipelines"))
from pytorch_reference_networks import ResnetGenerator  # noqa: E402

CT_LOW, CT_HIGH = -1024.0, 3000.0


def normalise_mr(volume):
    head = volume[volume > 0.1 * np.percentile(volume, 99)]
    low, high = np.percentile(head, 0.5), np.percentile(head, 99.5)
    return np.clip((volume - low) / (high - low) * 2 - 1, -1, 1)


def normalise_ct(volume):
    return np.clip((volume - CT_LOW) / (CT_HIGH - CT_LOW) * 2 - 1, -1, 1)


def slices(volume, context):
    """(k, context, 96, 96): each axial slice with its neighbours (edge slices repeated), padded with −1."""
    padded = np.pad(volume, ((8, 8), (0, 0), (0, 0)), constant_values=-1)
    half = context // 2
    depth = volume.shape[2]
    return np.stack([np.stack([padded[:, :, min(max(k + d, 0), depth - 1)] for d in range(-half, half + 1)])
                     for k in range(depth)]).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder with mr/ and ct/ of paired phantoms")
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--context", type=int, default=1, choices=[1, 3, 5])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    inputs, targets = [], []
    for mr_path in sorted(pathlib.Path(args.data, "mr").glob("*.nii.gz")):
        mr = normalise_mr(nib.load(mr_path).get_fdata().astype(np.float32))
        ct = normalise_ct(nib.load(pathlib.Path(args.data, "ct", mr_path.name)).get_fdata().astype(np.float32))
        x, y = slices(mr, args.context), slices(ct, 1)
        keep = (y[:, 0] > -0.9).mean(axis=(1, 2)) > 0.05  # slices with some head in them
        inputs.append(x[keep])
        targets.append(y[keep])
    x_all, y_all = torch.tensor(np.concatenate(inputs)), torch.tensor(np.concatenate(targets))
    print(f"{len(x_all)} paired slices, context {args.context}", file=sys.stderr)

    generator = ResnetGenerator(args.context, 1, ngf=args.ngf, n_blocks=args.blocks)
    optimiser = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    budget, start, iteration = args.minutes * 60, time.time(), 0
    while (elapsed := time.time() - start) < budget:
        for group in optimiser.param_groups:
            group["lr"] = 2e-4 * min(1.0, 2 * (1 - elapsed / budget))
        index = torch.tensor(rng.integers(0, len(x_all), 8))
        x, y = x_all[index], y_all[index]
        if rng.random() < 0.5:
            x, y = x.flip(2), y.flip(2)
        loss = (generator(x) - y).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        iteration += 1
        if iteration % 500 == 0:
            print(f"iteration {iteration}: L1 {loss.item() * (CT_HIGH - CT_LOW) / 2:.1f} HU, {elapsed:.0f} s",
                  file=sys.stderr)

    generator.eval()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for mr_path in sorted((ROOT / "SampleData" / "phantoms" / "heldout" / "mr").glob("*.nii.gz")):
            image = nib.load(mr_path)
            x = torch.tensor(slices(normalise_mr(image.get_fdata().astype(np.float32)), args.context))
            y = generator(x)[:, 0].permute(1, 2, 0).numpy()[8:-8]
            hu = (y + 1) / 2 * (CT_HIGH - CT_LOW) + CT_LOW
            header = image.header.copy()
            header.set_data_dtype(np.float32)
            nib.save(nib.Nifti1Image(hu.astype(np.float32), image.affine, header), out / mr_path.name)
    print(f"{iteration} iterations; predictions in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
