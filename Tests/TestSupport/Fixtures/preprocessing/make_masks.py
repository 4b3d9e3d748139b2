"""Reference body masks of the real sample volumes, computed independently with numpy / scikit-image / scipy
following the steps BodyMask documents: Otsu threshold (scikit-image, 256 bins over the clipped range: CT-like
volumes clipped below at -1024, all volumes above at the 99.9th percentile), largest 6-connected component,
3-D hole filling, 2-D hole filling in each axial slice, one dilation with the 6-neighbourhood.

Run from the package root:  python3 Tests/TestSupport/Fixtures/preprocessing/make_masks.py
Writes <name>_mask.nii.gz (uint8) beside this script.
"""
import os
import numpy as np
import nibabel as nib
from scipy import ndimage
from skimage.filters import threshold_otsu

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", "..", "..", ".."))

def body_mask(img):
    v = np.asarray(img.dataobj, dtype=np.float64).astype(np.float32)  # scaled like NIfTIFile.read
    lo = float(v.min())
    if lo <= -900:
        lo = max(lo, -1024.0)
    hi = float(np.percentile(v.astype(np.float64), 99.9))
    if hi <= lo:
        hi = float(v.max())
    counts, edges = np.histogram(np.clip(v.astype(np.float64), lo, hi), bins=256, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    t = threshold_otsu(hist=(counts, centres))
    mask = v > np.float32(t)
    labels, n = ndimage.label(mask)  # 6-connectivity
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    mask = labels == np.argmax(sizes)
    mask = ndimage.binary_fill_holes(mask)
    axis = int(nib.orientations.io_orientation(img.affine)[:, 0].tolist().index(2))
    mask = np.moveaxis(mask, axis, 0)
    mask = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    mask = np.moveaxis(mask, 0, axis)
    mask = ndimage.binary_dilation(mask, structure=ndimage.generate_binary_structure(3, 1))
    return mask, t

for name in ["colin27_ch2_t1", "example_ct_sm_3mm", "someones_anatomy"]:
    img = nib.load(os.path.join(root, "SampleData", "real", name + ".nii.gz"))
    mask, t = body_mask(img)
    out = nib.Nifti1Image(mask.astype(np.uint8), img.affine)
    nib.save(out, os.path.join(here, name + "_mask.nii.gz"))
    print(name, img.shape, "threshold", t, "fraction", mask.mean())
