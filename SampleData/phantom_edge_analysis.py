"""Where synthetic-CT error lives on the phantoms: voxels next to a strong tissue edge versus the rest.

A voxel is an "edge" voxel when its 3 x 3 x 3 neighbourhood holds tissues whose mean CT numbers differ by at least
300 HU (bone or air beside soft tissue: the skull, the sinuses, the scalp against air). At the phantoms' 2 x 2 x 4 mm
such voxels are partial-volume mixtures whose CT number depends on sub-voxel fractions. The figures are quoted in
SampleData/model/README.md (issue 8: why 60 HU is out of reach at this voxel size).

Optional, needs numpy, scipy and nibabel; nothing in the build or the tests uses it. Run from the package root:

    python3 SampleData/phantom_edge_analysis.py share FOLDER...        # edge share of phantom folders (labels/, ct/)
    python3 SampleData/phantom_edge_analysis.py mae PREDICTIONS...     # MAE on edge / other voxels, held-out set

`share` takes folders written by `mr2ct phantom --outputs ct,labels` (e.g. at another --spacing); `mae` scores
folders of synthetic CTs (`sub-101_sct.nii.gz` or `sub-101.nii.gz`) against SampleData/phantoms/heldout.
"""
import pathlib
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

HELDOUT = pathlib.Path(__file__).parent / "phantoms" / "heldout"
EDGE_HU = 300


def edge_voxels(ct, labels):
    """Voxels whose 3x3x3 neighbourhood spans tissues >= EDGE_HU apart (by each label's mean CT in this volume)."""
    means = np.zeros(labels.max() + 1)
    for label in np.unique(labels):
        means[label] = ct[labels == label].mean()
    tissue = means[labels]
    spread = ndimage.maximum_filter(tissue, size=3, mode="nearest") - ndimage.minimum_filter(tissue, size=3, mode="nearest")
    return spread >= EDGE_HU


def load(path):
    return nib.load(path).get_fdata()


def share(folders):
    for folder in map(pathlib.Path, folders):
        shares = []
        for label_path in sorted((folder / "labels").glob("*.nii.gz")):
            labels = load(label_path).astype(int)
            ct = load(folder / "ct" / label_path.name)
            head = labels != 0
            shares.append((edge_voxels(ct, labels) & head).sum() / head.sum())
        zooms = nib.load(label_path).header.get_zooms()
        print(f"{folder} ({' x '.join(f'{z:g}' for z in zooms)} mm): edge voxels {np.mean(shares):.1%} of the head "
              f"({', '.join(f'{s:.1%}' for s in shares)})")


def mae(prediction_folders):
    for folder in map(pathlib.Path, prediction_folders):
        sums = {"edge": [0.0, 0], "other": [0.0, 0]}
        for ct_path in sorted((HELDOUT / "ct").glob("*.nii.gz")):
            stem = ct_path.name[: -len(".nii.gz")]
            candidates = [folder / f"{stem}_sct.nii.gz", folder / ct_path.name]
            prediction = load(next(p for p in candidates if p.exists()))
            ct = load(ct_path)
            labels = load(HELDOUT / "labels" / ct_path.name).astype(int)
            head = labels != 0
            edge = edge_voxels(ct, labels)
            for name, voxels in (("edge", edge & head), ("other", ~edge & head)):
                sums[name][0] += np.abs(prediction[voxels] - ct[voxels]).sum()
                sums[name][1] += voxels.sum()
        total = sums["edge"][1] + sums["other"][1]
        parts = [f"{name}: {n / total:.0%} of the head, MAE {s / n:.0f} HU, contributes {s / total:.1f} HU"
                 for name, (s, n) in sums.items()]
        print(f"{folder}: " + "; ".join(parts))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("share", "mae"):
        sys.exit(__doc__)
    (share if sys.argv[1] == "share" else mae)(sys.argv[2:])
