"""Share of the MR body that conversion leaves without a prediction, before and after whole-slice inference.

    python3 SampleData/conversion_coverage.py MODEL.safetensors MR.nii.gz [MR.nii.gz ...]

"Before" is the field the conversion used until whole-slice inference (issue 15): each axial slice of the canonical
(RAS) volume resampled linearly to the model's spacing and cropped, centred, to sliceSize x sliceSize; a source
pixel is covered when at least half of its linear interpolation comes from inside that field. Recomputed here from
the model's stored preprocessing, independently of mr2ct's code. "After" is what `mr2ct convert` reports now
(qa.bodyInsideField). The body mask is mr2ct's (`mr2ct mask`, the one conversion uses). Needs numpy and nibabel
and a built mr2ct (MR2CT, default .build/release/mr2ct).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

MR2CT = os.environ.get("MR2CT", ".build/release/mr2ct")


def preprocessing(model):
    data = open(model, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(json.loads(data[8:8 + n])["__metadata__"]["preprocessing"])


def covered_line(source, spacing, target, size):
    """Source pixels (length `source`) that the centred crop to `size` keeps (>= half weight inside)."""
    rw = source if target is None else max(1, int(round(source * spacing / target)))
    n = size - rw
    offset = n // 2 if n >= 0 else -((-n + 1) // 2)
    inside = np.array([0 <= x + offset < size for x in range(rw)], float)
    if rw == source:
        return inside >= 0.5
    scale = rw / source
    x = np.clip((np.arange(source) + 0.5) * scale - 0.5, 0, rw - 1)
    lo = np.minimum(np.floor(x).astype(int), rw - 1)
    hi = np.minimum(lo + 1, rw - 1)
    w = x - lo
    return inside[lo] + w * (inside[hi] - inside[lo]) >= 0.5


def before(model, mr, mask):
    p = preprocessing(model)
    image = nib.as_closest_canonical(nib.load(mr))
    m = np.asarray(nib.as_closest_canonical(nib.load(mask)).dataobj) > 0
    zooms = image.header.get_zooms()[:3]
    cx = covered_line(m.shape[0], zooms[0], p.get("targetSpacing"), p["sliceSize"])
    cy = covered_line(m.shape[1], zooms[1], p.get("targetSpacing"), p["sliceSize"])
    field = cx[:, None, None] & cy[None, :, None]
    body = m.sum()
    return body, float((m & ~field).sum()) / body


def after(models, mr):
    with tempfile.TemporaryDirectory() as out:
        args = [MR2CT, "convert", mr, "-o", out]
        for model in models:
            args += ["--model", model]
        line = subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()[0]
    qa = json.loads(line)["qa"]
    return qa["bodyVoxels"], 1 - qa["bodyInsideField"], [w["code"] for w in qa["warnings"]]


if __name__ == "__main__":
    model = sys.argv[1]
    for mr in sys.argv[2:]:
        with tempfile.TemporaryDirectory() as tmp:
            mask = os.path.join(tmp, "mask.nii.gz")
            subprocess.run([MR2CT, "mask", mr, mask], capture_output=True, check=True)
            body, share_before = before(model, mr, mask)
        body_after, share_after, warnings = after([model], mr)
        print(f"{mr}\tbody {body} ({body_after})\tuncovered before {100 * share_before:.2f} %\tafter "
              f"{100 * share_after:.2f} %\twarnings {','.join(warnings) or '-'}")
