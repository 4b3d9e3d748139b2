"""Reference values for PreprocessingTests, computed with nibabel and scikit-image.

Run from the package root:  python3 Tests/TestSupport/Fixtures/preprocessing/make_fixtures.py
Writes reference.json beside this script (committed; CI has no Python).
"""
import json, os
import numpy as np
import nibabel as nib
from nibabel.orientations import io_orientation, aff2axcodes
from skimage.filters import threshold_otsu

here = os.path.dirname(os.path.abspath(__file__))

def rotation(axis, degrees):
    t = np.deg2rad(degrees); c, s = np.cos(t), np.sin(t)
    r = np.eye(3)
    a, b = [(1, 2), (0, 2), (0, 1)][axis]
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r

affines = []
def add(name, linear, offset):
    a = np.eye(4); a[:3, :3] = linear; a[:3, 3] = offset
    affines.append((name, a))

add("RAS", np.diag([1.0, 1.2, 2.5]), [-10, 20, 5])
add("LPS", np.diag([-0.9, -0.9, 3.0]), [100, 120, -40])
add("permuted PIR", np.array([[0, 0, 1.1], [-0.8, 0, 0], [0, -2.0, 0]]), [1, 2, 3])
add("oblique 25 deg", rotation(0, 25) @ rotation(2, -15) @ np.diag([1.0, 1.5, 3.0]), [5, -7, 11])
add("oblique LPS 35 deg", np.diag([-1, -1, 1]) @ rotation(1, 35) @ np.diag([0.7, 0.7, 2.0]), [0, 0, 0])
add("oblique 60 deg about S", rotation(2, 60) @ np.diag([0.5, 3.0, 1.0]), [3, 2, 1])
add("oblique 50 deg anisotropic", rotation(2, 50) @ rotation(0, -70) @ np.diag([0.5, 3.0, 1.0]), [0, 0, 0])
add("strongly anisotropic shear", np.array([[0.5, 0.0, 2.4], [0.3, 1.0, 0.1], [0.0, 0.2, -3.0]]), [0, 0, 0])

orientation = []
for name, a in affines:
    o = io_orientation(a)
    orientation.append({
        "name": name,
        "affine": a.tolist(),
        "worldAxis": [int(x) for x in o[:, 0]],
        "sign": [int(x) for x in o[:, 1]],
        "code": "".join(aff2axcodes(a)),
    })

rng = np.random.default_rng(5)
otsu = []
for name, values in [
    ("two gaussians", np.concatenate([rng.normal(10, 3, 900), rng.normal(60, 8, 300)])),
    ("three classes skewed", np.concatenate([rng.normal(0, 1, 150), rng.normal(20, 4, 600), rng.normal(35, 2, 100)])),
    ("CT-like", np.concatenate([rng.normal(-1000, 10, 1200), rng.normal(40, 30, 750), rng.normal(900, 200, 120)])),
]:
    values = values.astype(np.float32)
    otsu.append({"name": name, "values": [float(v) for v in values],
                 "threshold": float(threshold_otsu(values, nbins=256))})

percentiles = []
values = rng.gamma(2.0, 50.0, 777).astype(np.float32)
for p in [0.0, 0.5, 1.0, 25.0, 50.0, 99.5, 100.0]:
    percentiles.append({"p": p, "value": float(np.percentile(values.astype(np.float64), p))})

with open(os.path.join(here, "reference.json"), "w") as f:
    json.dump({"orientation": orientation, "otsu": otsu,
               "percentileValues": [float(v) for v in values], "percentiles": percentiles}, f)
print("wrote reference.json")
for o in orientation: print(o["name"], o["code"], o["worldAxis"], o["sign"])
for o in otsu: print(o["name"], o["threshold"])
