"""Why the unpaired preset misses on the meat-phantom halves (README "Accuracy on a real MR/CT pair"): what the MR
says about the CT inside the scoring mask, and whether cheap post-processing of the sCT would help.

  python3 Pipelines/experiments/meat_phantom_diagnostics.py MEAT RUN_LOWER RUN_UPPER [MR2CT]

MEAT is the split of meat_phantom_split.py, RUN_x the `--preset sct` run trained on half x
(meat_phantom_preset.sh). Prints per scored half:
- the correlation of MR and CT, and of the sCT and CT, inside the scoring mask;
- the oracle intensity map (64 MR-intensity bins, each given its mean true HU) on the raw MR and after a
  homomorphic bias-field correction (the MR divided by its Gaussian-smoothed in-mask mean, sigma 10/20/40 mm): if
  the MR's intensity spread were a bias field hiding tissue contrast, the corrected map would score better;
- the sCT's MAE per checkpoint (the last three), of their mean and median, of a model with their averaged weights,
  and of the last sCT and the mean smoothed by a Gaussian of sigma 1/2/3 mm (texture noise would be removed by it);
- the mean error per slice of the last checkpoint's sCT.
Converts with `--mirror-average`; needs numpy, scipy and nibabel.
"""
import json
import pathlib
import struct
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
from scipy import ndimage

meat, runs = pathlib.Path(sys.argv[1]), {"lower": pathlib.Path(sys.argv[2]), "upper": pathlib.Path(sys.argv[3])}
mr2ct = sys.argv[4] if len(sys.argv) > 4 else ".build/release/mr2ct"
work = pathlib.Path(tempfile.mkdtemp(prefix="meat-diagnostics-"))
load = lambda p: np.asarray(nib.load(p).dataobj).astype(float)


def read_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    tensors = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=np.float32)
               .reshape(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    return header.get("__metadata__", {}), tensors


def write_safetensors(path, metadata, tensors):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        b = np.ascontiguousarray(t, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def convert(model, half, tag):
    out = work / f"{tag}-{half}"
    subprocess.run([mr2ct, "convert", "--model", str(model), str(meat / half / "mr"), "-o", str(out),
                    "--mirror-average", "--quiet", "--overwrite"], check=True, stdout=subprocess.DEVNULL)
    return load(next(out.glob("*.nii.gz")))


def oracle_map(mr, ct, mask, bins=64):
    v, hu = mr[mask], ct[mask]
    edges = np.percentile(v, np.linspace(0, 100, bins + 1))
    index = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1)
    means = np.array([hu[index == b].mean() if (index == b).any() else 0.0 for b in range(bins)])
    return round(float(np.abs(means[index] - hu).mean()), 1)


for trained, run in runs.items():
    scored = "upper" if trained == "lower" else "lower"
    mr_image = nib.load(meat / scored / "mr/meat.nii.gz")
    mr, zooms = np.asarray(mr_image.dataobj).astype(float), mr_image.header.get_zooms()[:3]
    ct, mask = load(meat / scored / "ct/meat.nii.gz"), load(meat / scored / "score_mask/meat.nii.gz") > 0
    mae = lambda p: round(float(np.abs(p[mask] - ct[mask]).mean()), 1)
    sigma = lambda mm: [mm / z for z in zooms]
    rows = {"corr(MR, CT)": round(float(np.corrcoef(mr[mask], ct[mask])[0, 1]), 2), "oracle map, raw MR": oracle_map(mr, ct, mask)}
    for mm in (10, 20, 40):
        bias = ndimage.gaussian_filter(mr * mask, sigma(mm)) / np.maximum(ndimage.gaussian_filter(mask * 1.0, sigma(mm)), 1e-3)
        rows[f"oracle map, bias-corrected {mm} mm"] = oracle_map(mr / np.maximum(bias, 1), ct, mask)
    checkpoints = sorted((run / "checkpoints").glob("iter_*"))[-3:]
    sct = [convert(c / "G_A.safetensors", scored, f"{trained}-{c.name}") for c in checkpoints]
    loaded = [read_safetensors(c / "G_A.safetensors") for c in checkpoints]
    averaged = work / f"averaged-{trained}.safetensors"
    write_safetensors(averaged, loaded[-1][0], {k: np.mean([t[k] for _, t in loaded], axis=0) for k in loaded[-1][1]})
    rows["corr(sCT, CT)"] = round(float(np.corrcoef(sct[-1][mask], ct[mask])[0, 1]), 2)
    rows.update({c.name: mae(p) for c, p in zip(checkpoints, sct)})
    mean = np.mean(sct, axis=0)
    rows["mean of 3"], rows["median of 3"] = mae(mean), mae(np.median(sct, axis=0))
    rows["averaged weights of 3"] = mae(convert(averaged, scored, f"{trained}-averaged"))
    for mm in (1, 2, 3):
        rows[f"last, smoothed {mm} mm"] = mae(ndimage.gaussian_filter(sct[-1], sigma(mm)))
        rows[f"mean of 3, smoothed {mm} mm"] = mae(ndimage.gaussian_filter(mean, sigma(mm)))
    for name, sel in (("fat", ct < -30), ("soft tissue", (ct >= -30) & (ct < 300))):
        s = sel & mask
        rows[f"{name}: CT mean / SD, sCT mean / SD"] = [round(float(x)) for x in (ct[s].mean(), ct[s].std(), sct[-1][s].mean(), sct[-1][s].std())]
    rows["ME per slice (last)"] = [round(float((sct[-1][..., k] - ct[..., k])[mask[..., k]].mean()))
                                   for k in range(ct.shape[2]) if mask[..., k].sum() > 100]
    print(f"scored {scored} (trained on {trained}):", json.dumps(rows), flush=True)
