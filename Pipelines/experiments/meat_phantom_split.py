"""Splits the real meat-phantom MR/CT pair (../shared/data/meat_phantom) into two halves along z for an honest
train-on-one-half, score-on-the-other experiment, and computes the two baselines of each half.

Writes OUT/{lower,upper}/{mr,ct}/meat.nii.gz (the halves, geometry kept exactly: nibabel's slicer shifts the
affine), OUT/{lower,upper}/score_mask/meat.nii.gz (the object mask eroded by 4 mm in plane, as the pair's README
asks) and OUT/baselines.json: per half, MAE inside the scoring mask of
  - "water": 0 HU everywhere;
  - "intensity_map": the best map of MR intensity to HU fitted on the scored half itself (64 equal-width
    intensity bins over the half's masked MR range, each given its mean true HU) - an oracle no method can use;
  - "best_constant": the scored half's own median HU everywhere (the MAE-optimal constant; an oracle);
  - "training_ct_median": the OTHER half's median CT HU (inside its scoring mask) everywhere - a baseline an
    unpaired method can use, since it sees the training CTs;
  - "intensity_map_sample": each voxel given a HU drawn from the true HUs of its own intensity bin (a random
    permutation within the bin, seed 0): what a perfect distribution-matching model scores when the MR tells it
    the voxel's intensity and nothing else (an adversarial objective matches distributions, it does not pick
    the conditional median that MAE rewards);
  - "training_ct_sample": HUs drawn from the other half's CT distribution, independent of the MR (seed 0);
  - "transferred_intensity_map": a map of MR intensity to HU fitted on the OTHER half with its registered CT
    (both halves' MR normalised as mr2ct does, 0.5 / 99.5 percentiles inside the mask to 0 / 1; 64 equal-count
    bins of the training half, each given its median HU) and applied to the scored half: what a supervised
    per-voxel intensity regressor trained on the other half reaches (not an unpaired method's baseline).
Needs numpy, scipy and nibabel (development only; nothing in the build or the tests uses it).

  python3 Pipelines/experiments/meat_phantom_split.py ../shared/data/meat_phantom /tmp/meat
"""
import json
import pathlib
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
mr, ct, mask = (nib.load(source / f) for f in ("mr_t2.nii.gz", "ct_registered.nii.gz", "mask.nii.gz"))
nz = mr.shape[2]
halves = {"lower": slice(0, nz // 2), "upper": slice(nz // 2, nz)}
spacing = mr.header.get_zooms()[:2]
radius = 4.0  # mm, in plane
ry, rx = (int(np.floor(radius / s)) for s in spacing)
yy, xx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
disk = ((yy * spacing[0]) ** 2 + (xx * spacing[1]) ** 2) <= radius ** 2
eroded = ndi.binary_erosion(np.asarray(mask.dataobj) > 0, structure=disk[:, :, None])

def scored(name):
    z, e = halves[name], eroded[:, :, halves[name]]
    return np.asarray(ct.dataobj)[:, :, z][e].astype(float), np.asarray(mr.dataobj)[:, :, z][e].astype(float)


baselines = {}
for name, z in halves.items():
    for folder, image in (("mr", mr), ("ct", ct)):
        (out / name / folder).mkdir(parents=True, exist_ok=True)
        nib.save(image.slicer[:, :, z], out / name / folder / "meat.nii.gz")
    (out / name / "score_mask").mkdir(parents=True, exist_ok=True)
    m = mask.slicer[:, :, z]
    e = eroded[:, :, z]
    nib.save(nib.Nifti1Image(e.astype(np.uint8), m.affine, m.header), out / name / "score_mask" / "meat.nii.gz")
    c = np.asarray(ct.dataobj)[:, :, z][e].astype(float)
    a = np.asarray(mr.dataobj)[:, :, z][e].astype(float)
    lo, hi = a.min(), a.max()
    bins = np.minimum(((a - lo) / max(hi - lo, 1e-9) * 64).astype(int), 63)
    rng = np.random.default_rng(0)
    fitted, sampled = np.zeros_like(c), np.zeros_like(c)
    for b in np.unique(bins):
        fitted[bins == b] = c[bins == b].mean()
        sampled[bins == b] = rng.permutation(c[bins == b])
    other, other_mr = scored("upper" if name == "lower" else "lower")
    def normalised(v):
        p0, p1 = np.percentile(v, [0.5, 99.5])
        return np.clip((v - p0) / max(p1 - p0, 1e-9), 0, 1)
    edges = np.quantile(normalised(other_mr), np.linspace(0, 1, 65))
    bin_of = lambda v: np.clip(np.searchsorted(edges, normalised(v), side="right") - 1, 0, 63)
    trained_bins = bin_of(other_mr)
    medians = np.array([np.median(other[trained_bins == k]) if (trained_bins == k).any() else np.median(other)
                        for k in range(64)])
    mae = lambda p: round(float(np.abs(c - p).mean()), 1)
    baselines[name] = {"slices": [z.start, z.stop - 1], "voxels": int(e.sum()),
                       "water": mae(0), "intensity_map": mae(fitted), "best_constant": mae(np.median(c)),
                       "training_ct_median": mae(np.median(other)), "intensity_map_sample": mae(sampled),
                       "training_ct_sample": mae(rng.choice(other, c.size)),
                       "transferred_intensity_map": mae(medians[bin_of(a)]),
                       "bone_share": round(float((c >= 300).mean()), 4)}
(out / "baselines.json").write_text(json.dumps(baselines, indent=1) + "\n")
print(json.dumps(baselines, indent=1))
