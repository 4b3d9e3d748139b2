"""Intensity-only and bulk-density baselines on the held-out phantoms (figures quoted in SampleData/README.md).

Optional, needs numpy and nibabel; nothing in the build or the tests uses it.
Run from the package root:  python3 SampleData/phantom_baselines.py
"""
import pathlib

import nibabel as nib
import numpy as np

root = pathlib.Path(__file__).parent / "phantoms" / "heldout"
rows = []
for mr_path in sorted((root / "mr").glob("*.nii.gz")):
    stem = mr_path.name[: -len(".nii.gz")]
    labels = np.asarray(nib.load(root / "labels" / mr_path.name).dataobj).astype(int)
    mr = nib.load(mr_path).get_fdata()
    ct = nib.load(root / "ct" / mr_path.name).get_fdata()
    head = labels != 0
    m, c = mr[head], ct[head]
    # Best function of MR intensity alone, fitted on the subject itself: CT median per MR bin (200 bins).
    bins = np.minimum((m / m.max() * 200).astype(int), 199)
    error = sum(np.abs(c[bins == b] - np.median(c[bins == b])).sum() for b in np.unique(bins))
    bone = np.isin(labels, [4, 5])[head]
    rows.append((error / c.size, np.abs(c - np.where(bone, 700, 0)).mean(), np.abs(c).mean()))
    print(f"{stem}: intensity-only {rows[-1][0]:.0f} HU, bulk density {rows[-1][1]:.0f} HU, water {rows[-1][2]:.0f} HU")
r = np.array(rows)
for name, column in zip(["intensity-only", "bulk density (oracle bone 700 HU)", "water"], r.T):
    print(f"{name}: MAE {column.mean():.0f} ± {column.std(ddof=1):.0f} HU")
