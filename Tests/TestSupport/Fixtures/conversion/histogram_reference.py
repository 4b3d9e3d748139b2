"""Reference values for QualityCheckTests: the normalised Wasserstein-1 distances of an MR's body histograms
(intensity and neighbour-difference texture) from the bundled model's stored training histogram, in numpy.

    mr2ct mask SampleData/phantoms/heldout/mr/sub-101.nii.gz /tmp/m101.nii.gz
    python3 histogram_reference.py SampleData/model/phantom_G_A.safetensors \
        SampleData/phantoms/heldout/mr/sub-101.nii.gz /tmp/m101.nii.gz

Normalisation as mr2ct's: 0.5 / 99.5 percentiles (numpy "linear") of the voxels inside the mask -> [-1, 1],
clipped; 64 bins over [-1, 1] (intensities) and [0, 2] (|difference| of neighbours along the first voxel axis,
both inside the mask). Distance: sum |CDF_a - CDF_b| / 64. Needs numpy and nibabel.
"""
import json
import struct
import sys

import nibabel as nib
import numpy as np


def stored(model):
    data = open(model, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    h = json.loads(json.loads(data[8:8 + n])["__metadata__"]["mr_histogram"])
    return np.array(h["counts"], float), np.array(h["differenceCounts"], float)


def histograms(mr, mask):
    v = np.asarray(nib.load(mr).dataobj, dtype=np.float64)
    m = np.asarray(nib.load(mask).dataobj) > 0
    lo, hi = np.percentile(v[m], 0.5), np.percentile(v[m], 99.5)
    n = np.clip((v - lo) * (2 / (hi - lo)) - 1, -1, 1)
    intensity = np.bincount(np.clip(np.floor((n[m] + 1) * 32).astype(int), 0, 63), minlength=64)
    d = np.abs(n[1:] - n[:-1])[m[1:] & m[:-1]]
    texture = np.bincount(np.clip(np.floor(d * 32).astype(int), 0, 63), minlength=64)
    return intensity.astype(float), texture.astype(float)


def w1(p, q):
    return np.abs(np.cumsum(p / p.sum()) - np.cumsum(q / q.sum())).sum() / len(p)


if __name__ == "__main__":
    ti, tt = stored(sys.argv[1])
    i, t = histograms(sys.argv[2], sys.argv[3])
    print(f"intensity {w1(i, ti):.6f} texture {w1(t, tt):.6f}")
