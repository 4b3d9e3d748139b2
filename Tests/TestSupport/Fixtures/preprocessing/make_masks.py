"""Reference body masks, computed independently with numpy / scipy.ndimage / scikit-image following the steps
BodyMask documents (Sources/Preprocessing/BodyMask.swift, README "Body mask"):

1. threshold: MR a quarter of the way from the minimum to the median of the voxels above Otsu's threshold
   (scikit-image, 256 bins over the clipped range: volumes clipped above at the 99.9th percentile), CT (minimum
   <= -900) -500 HU; voxels strictly above are body; 3-D holes filled at once;
2. CT only: opening with a ball of 4 mm (erosion with outside = foreground), its components chosen as in 3, the
   thresholded mask kept within 4 mm (ball dilation) of them (skipped when the opening is empty);
3. 6-connected components: the largest, and every other one of at least 20 mL;
4. closing with a ball of 3 mm on the grid padded with background by the ball's reach;
5. dilation with a ball of 2 mm;
6. 3-D hole filling (6-connected background), then 2-D hole filling in each axial slice (4-connected).
The ball of radius r holds the offsets d with sum((d*spacing)^2) <= r^2 * (1 + 1e-6), spacing from the affine's
column norms.

Run from the package root:  python3 Tests/TestSupport/Fixtures/preprocessing/make_masks.py
Writes <name>_mask.nii.gz (uint8) beside this script for the three SampleData/real volumes and, when
../shared/data/meat_phantom exists (beside the checkout), meat_mr_t2_mask.nii.gz / meat_ct_registered_mask.nii.gz,
and prints the figures the README records (Dice, eroded-object share inside, holes).
"""
import os
import numpy as np
import nibabel as nib
from scipy import ndimage
from skimage.filters import threshold_otsu

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", "..", "..", ".."))
shared = os.path.join(os.path.dirname(root), "shared", "data")
if not os.path.isdir(shared):
    shared = "/work/shared/data"


def ball(r, spacing):
    tol = 1 + 1e-6
    n = [min(64, int(np.floor(r / s * tol))) for s in spacing]
    g = np.mgrid[-n[0]:n[0] + 1, -n[1]:n[1] + 1, -n[2]:n[2] + 1].astype(np.float64)
    d2 = (g[0] * spacing[0]) ** 2 + (g[1] * spacing[1]) ** 2 + (g[2] * spacing[2]) ** 2
    return d2 <= r * r * tol


def components(mask, spacing, min_ml=20.0):
    labels, n = ndimage.label(mask)  # 6-connectivity
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes * (spacing[0] * spacing[1] * spacing[2]) >= min_ml * 1000
    keep[np.argmax(sizes)] = True
    keep[0] = False
    return keep[labels]


def closing(mask, b):
    pad = [(s // 2, s // 2) for s in b.shape]
    m = ndimage.binary_erosion(ndimage.binary_dilation(np.pad(mask, pad), b), b)
    return m[tuple(slice(p, m.shape[a] - p) for a, (p, _) in enumerate(pad))]


def threshold(v):
    if v.min() <= -900:
        return np.float32(-500.0), "ct"
    lo = float(v.min())
    hi = float(np.percentile(v.astype(np.float64), 99.9))
    if hi <= lo:
        hi = float(v.max())
    counts, edges = np.histogram(np.clip(v.astype(np.float64), lo, hi), bins=256, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    t = threshold_otsu(hist=(counts, centres))
    otsu = np.float32(t)
    above = v[v > otsu].astype(np.float64)
    if above.size == 0:
        return otsu, "mr"
    low = float(v.min())
    return np.float32(low + (float(np.median(above)) - low) * 0.25), "mr"


def body_mask(img):
    v = np.asarray(img.dataobj, dtype=np.float64).astype(np.float32)  # scaled like NIfTIFile.read
    spacing = tuple(np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0)))
    t, modality = threshold(v)
    mask = ndimage.binary_fill_holes(v > t)
    if modality == "ct":
        b = ball(4.0, spacing)
        opened = ndimage.binary_dilation(ndimage.binary_erosion(mask, b, border_value=1), b)
        if opened.any():
            mask &= ndimage.binary_dilation(components(opened, spacing), b)
    mask = components(mask, spacing)
    mask = closing(mask, ball(3.0, spacing))
    mask = ndimage.binary_dilation(mask, ball(2.0, spacing))
    mask = ndimage.binary_fill_holes(mask)
    axis = int(nib.orientations.io_orientation(img.affine)[:, 0].tolist().index(2))
    mask = np.moveaxis(mask, axis, 0)
    mask = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    mask = np.moveaxis(mask, 0, axis)
    return mask, float(t), modality


def save(mask, img, name):
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), img.affine), os.path.join(here, name))


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def holes(mask, axis=2):
    filled = np.moveaxis(ndimage.binary_fill_holes(mask), axis, 0)
    filled = np.moveaxis(np.stack([ndimage.binary_fill_holes(s) for s in filled]), 0, axis)
    return int((filled & ~mask).sum())


if __name__ == "__main__":
    for name in ["colin27_ch2_t1", "example_ct_sm_3mm", "someones_anatomy"]:
        img = nib.load(os.path.join(root, "SampleData", "real", name + ".nii.gz"))
        mask, t, modality = body_mask(img)
        save(mask, img, name + "_mask.nii.gz")
        print(name, img.shape, modality, "threshold", t, "fraction", round(float(mask.mean()), 4), "holes", holes(mask))
    meat = os.path.join(shared, "meat_phantom")
    if os.path.isdir(meat):
        mr = nib.load(os.path.join(meat, "mr_t2.nii.gz"))
        ct = nib.load(os.path.join(meat, "ct_registered.nii.gz"))
        truth = np.asarray(nib.load(os.path.join(meat, "mask.nii.gz")).dataobj) > 0
        mr_mask, t, _ = body_mask(mr)
        ct_mask, _, _ = body_mask(ct)
        save(mr_mask, mr, "meat_mr_t2_mask.nii.gz")
        save(ct_mask, ct, "meat_ct_registered_mask.nii.gz")
        # The object mask eroded by 4 mm in plane (a disc of radius 4 voxels at 1 mm), as the README scores.
        yy, xx = np.mgrid[-4:5, -4:5]
        disc = (xx ** 2 + yy ** 2 <= 16)[:, :, None]
        eroded = ndimage.binary_erosion(truth, structure=disc)
        print("meat MR threshold", t, "Dice MR/object %.4f MR/CT %.4f CT/object %.4f" % (
            dice(mr_mask, truth), dice(mr_mask, ct_mask), dice(ct_mask, truth)),
            "eroded object inside MR mask %.5f" % mr_mask[eroded].mean(), "holes", holes(mr_mask), holes(ct_mask))
    for subject in ["sub-101", "sub-102", "sub-103", "sub-104", "sub-105"]:
        d = os.path.join(root, "SampleData", "phantoms", "heldout")
        a, _, _ = body_mask(nib.load(os.path.join(d, "mr", subject + ".nii.gz")))
        b, _, _ = body_mask(nib.load(os.path.join(d, "ct", subject + ".nii.gz")))
        print(subject, "Dice MR/CT %.4f" % dice(a, b))
