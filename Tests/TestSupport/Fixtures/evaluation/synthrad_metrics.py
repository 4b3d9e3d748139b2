#!/usr/bin/env python3
"""SynthRAD 2023 image metrics of a synthetic CT with numpy + scikit-image (the procedure of
github.com/SynthRAD2023/metrics, image_metrics.py), to cross-check `mr2ct evaluate --mask` on real files:

    python3 synthrad_metrics.py SCT.nii.gz CT.nii.gz MASK.nii.gz
    mr2ct evaluate --pred SCT.nii.gz --ref CT.nii.gz --mask MASK.nii.gz

Needs nibabel, numpy, scikit-image (not CI). Prints one JSON line with mae, me, psnr, ssim, voxels.
"""
import json
import sys
import nibabel as nib
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util.arraycrop import crop

LO, HI = -1024.0, 3000.0
pred, ref, mask = (nib.load(p).get_fdata() for p in sys.argv[1:4])
m = mask > 0
gc, pc = np.clip(ref, LO, HI), np.clip(pred, LO, HI)
g = np.where(m, gc, LO) - LO
p = np.where(m, pc, LO) - LO
_, smap = structural_similarity(g, p, data_range=HI - LO, full=True)
print(json.dumps({"mae": float(np.abs(pred[m] - ref[m]).mean()), "me": float((pred[m] - ref[m]).mean()),
                  "psnr": float(peak_signal_noise_ratio(gc[m], pc[m], data_range=HI - LO)),
                  "ssim": float(crop(smap, 3)[crop(m, 3)].mean(dtype=np.float64)), "voxels": int(m.sum())}))
