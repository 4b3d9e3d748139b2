"""Per-tissue figures of a synthetic CT of one half of the meat phantom (README "Accuracy on a real MR/CT pair").

  python3 Pipelines/experiments/meat_phantom_tissue.py SCT.nii.gz REF_CT.nii.gz SCORE_MASK.nii.gz

Prints, inside the scoring mask: MAE and ME overall, per band of the true CT (fat < -30 HU, soft tissue -30...300,
bone >= 300) with each band's share, and the share of voxels predicted below -500 HU ("air inside the object").
Needs numpy and nibabel.
"""
import json
import sys

import nibabel as nib
import numpy as np

sct, ref, mask = (np.asarray(nib.load(p).dataobj) for p in sys.argv[1:4])
m = mask > 0
p, c = sct[m].astype(float), ref[m].astype(float)
out = {"voxels": int(m.sum()), "mae": round(float(np.abs(p - c).mean()), 1), "me": round(float((p - c).mean()), 1),
       "air_inside": round(float((p < -500).mean()), 4)}
for name, band in (("fat", c < -30), ("soft", (c >= -30) & (c < 300)), ("bone", c >= 300)):
    if band.any():
        out[name] = {"share": round(float(band.mean()), 4), "mae": round(float(np.abs(p - c)[band].mean()), 1),
                     "me": round(float((p - c)[band].mean()), 1)}
print(json.dumps(out))
