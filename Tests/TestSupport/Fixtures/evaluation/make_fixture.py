#!/usr/bin/env python3
"""Makes the Evaluation test fixture: small CT-like volumes and the SynthRAD 2023 metrics computed on them
with scikit-image, following github.com/SynthRAD2023/metrics functions/image_metrics.py (ImageMetrics.mae,
.psnr with use_population_range=True, .ssim with a mask).

Run from this folder:  pip install scikit-image numpy && python3 make_fixture.py
Writes <case>_ref.f32, <case>_pred.f32 (little-endian float32, i fastest: numpy shape (nz, ny, nx)),
<case>_mask.u8 (0/1) and expected.json. CI does not run this script; it checks the committed files.
"""
import json
import numpy as np
import skimage
from skimage.metrics import structural_similarity, peak_signal_noise_ratio
from skimage.util.arraycrop import crop

LO, HI = -1024.0, 3000.0


def synthrad_metrics(gt, pred, mask, gaussian=False):
    gt = gt.astype(np.float64)
    pred = pred.astype(np.float64)
    m = mask > 0
    mae = float(np.abs(gt[m] - pred[m]).mean())
    me = float((pred[m] - gt[m]).mean())
    gtc, prc = np.clip(gt, LO, HI), np.clip(pred, LO, HI)
    psnr = float(peak_signal_noise_ratio(gtc[m], prc[m], data_range=HI - LO))
    g = np.where(m, gtc, LO) - LO
    p = np.where(m, prc, LO) - LO
    if gaussian:
        _, smap = structural_similarity(g, p, data_range=HI - LO, full=True, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False)
        pad = 5
    else:
        _, smap = structural_similarity(g, p, data_range=HI - LO, full=True)
        pad = 3
    ssim = float(crop(smap, pad)[crop(m, pad)].mean(dtype=np.float64))
    return mae, me, psnr, ssim


def phantom(shape, rng):
    nz, ny, nx = shape
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    r = ((x - nx / 2 + 0.5) / (nx * 0.42)) ** 2 + ((y - ny / 2 + 0.5) / (ny * 0.4)) ** 2 \
        + ((z - nz / 2 + 0.5) / (nz * 0.45)) ** 2
    body = r < 1
    ct = np.full(shape, -1000.0) + rng.normal(0, 15, shape)
    ct[body] = 40 + rng.normal(0, 25, body.sum())
    ct[r < 0.25] = 1200 + rng.normal(0, 300, (r < 0.25).sum())   # dense bone, some above 3000 after noise
    ct[0, 0, :3] = [-1200, 3500, 3100]                          # outside the clip window
    return ct.astype(np.float32), body


def main():
    rng = np.random.default_rng(20231)
    cases = {}
    for name, shape in [("body", (16, 18, 20)), ("edge", (9, 10, 11))]:
        ref, body = phantom(shape, rng)
        pred = ref + rng.normal(30, 80, shape).astype(np.float32)
        pred[body & (rng.random(shape) < 0.05)] = 3400                 # some sCT voxels beyond the window
        pred = pred.astype(np.float32)
        mask = body.copy()
        if name == "edge":
            mask[:, :, -2:] = True                                     # mask voxels in the cropped border
        ref.tofile(f"{name}_ref.f32")
        pred.tofile(f"{name}_pred.f32")
        mask.astype(np.uint8).tofile(f"{name}_mask.u8")
        mae, me, psnr, ssim = synthrad_metrics(ref, pred, mask)
        entry = {"nx": shape[2], "ny": shape[1], "nz": shape[0], "mae": mae, "me": me, "psnr": psnr,
                 "ssim_uniform7": ssim, "voxels": int(mask.sum())}
        if min(shape) >= 11:
            entry["ssim_gaussian1_5"] = synthrad_metrics(ref, pred, mask, gaussian=True)[3]
        cases[name] = entry
    with open("expected.json", "w") as f:
        json.dump({"generator": f"make_fixture.py, numpy {np.__version__}, scikit-image {skimage.__version__}",
                   "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
