#!/usr/bin/env python3
"""Writes the NIfTI test fixtures with nibabel (an implementation independent of nifti_clib) and records what
nibabel reports about each file in expected.json: shape, affine, zooms, min/max/mean of the scaled data, codes.

Run from this folder:  python3 make_fixtures.py
Also records nibabel's figures for the real volumes in SampleData/real (the same keys, under "real").

    python3 make_fixtures.py --verify-roundtrip DIR
reads the files the Swift round-trip test left in DIR (MR2CT_ROUNDTRIP_DIR) with nibabel and records in
roundtrip_nibabel.json whether nibabel sees the same geometry and values as the sources they were written like.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
REAL = os.path.join(ROOT, "SampleData", "real")
SHAPE = (5, 6, 7)


def ramp(dtype, lo, hi, shape=SHAPE):
    """Deterministic values covering lo…hi, i fastest varying (Fortran order like NIfTI)."""
    n = int(np.prod(shape))
    rng = np.random.default_rng(1234)
    v = np.linspace(lo, hi, n)
    v = v[rng.permutation(n)]
    v[0], v[1] = lo, hi
    return np.asarray(v).astype(dtype).reshape(shape, order="F")


def rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def affine_from(r, zooms, offset):
    a = np.eye(4)
    a[:3, :3] = r @ np.diag(zooms)
    a[:3, 3] = offset
    return a


RAS = affine_from(np.eye(3), (1.5, 2.0, 2.5), (-10.0, -20.0, -30.0))
LPS = affine_from(np.diag([-1.0, -1.0, 1.0]), (0.9, 0.9, 3.0), (40.0, 50.0, -60.0))
OBLIQUE = affine_from(rotation(0.3, -0.2, 0.5), (1.1, 1.2, 1.3), (12.5, -7.25, 3.0))


def save(img, name, **info):
    path = os.path.join(HERE, name)
    nib.save(img, path)
    return name


def describe(path):
    img = nib.load(path)
    hdr = img.header
    data = np.asanyarray(img.dataobj).astype(np.float64)
    def raw(field):
        if field not in hdr:
            return None
        v = float(hdr[field])
        return v if np.isfinite(v) else None
    out = {
        "shape": [int(s) for s in img.shape],
        "affine": [[float(x) for x in row] for row in img.affine],
        "zooms": [float(z) for z in hdr.get_zooms()[:3]],
        "datatype": str(hdr.get_data_dtype().newbyteorder("=").name),
        "orientation": "".join(nib.aff2axcodes(img.affine)),
        # nibabel moves the header's scaling into the array proxy when loading (1 and 0 when there is none).
        "scl_slope": float(getattr(img.dataobj, "slope", 1.0)),
        "scl_inter": float(getattr(img.dataobj, "inter", 0.0)),
        "pixdim": [float(x) for x in hdr["pixdim"]] if "pixdim" in hdr else None,
    }
    if isinstance(hdr, nib.Nifti1Header):  # Nifti2Header derives from it
        out["qform_code"] = int(hdr["qform_code"])
        out["sform_code"] = int(hdr["sform_code"])
        out["version"] = 2 if isinstance(hdr, nib.Nifti2Header) else 1
    else:
        out["qform_code"] = 0
        out["sform_code"] = 0
        out["version"] = 0
    if data.ndim == 4:
        out["volumes"] = [{"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
                           "first": float(v.flat[0]), "last": float(v[-1, -1, -1])}
                          for v in (data[..., t] for t in range(data.shape[3]))]
    else:
        out["min"] = float(data.min())
        out["max"] = float(data.max())
        out["mean"] = float(data.mean())
        # A few voxels by (i, j, k), to check the storage order exactly.
        probes = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), tuple(s - 1 for s in data.shape[:3]),
                  tuple(s // 2 for s in data.shape[:3])]
        out["probes"] = [{"ijk": list(map(int, p)), "value": float(data[p])} for p in probes]
    return out


def make():
    for name in os.listdir(HERE):
        if name.endswith((".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz")):
            os.remove(os.path.join(HERE, name))
    names = []

    # Every datatype, with values reaching far into each type's range.
    ranges = {
        "uint8": (0, 255), "int8": (-128, 127), "int16": (-32768, 32767), "uint16": (0, 65535),
        "int32": (-2_000_000_000, 2_000_000_000), "uint32": (0, 4_000_000_000),
        "int64": (-(2 ** 40), 2 ** 40), "float32": (-1.5e4, 3.25e4), "float64": (-0.123456789, 98765.4321),
    }
    for dtype, (lo, hi) in ranges.items():
        data = ramp(dtype, lo, hi)
        img = nib.Nifti1Image(data, RAS, dtype=dtype)
        img.header.set_slope_inter(1, 0)
        img.set_qform(RAS, code=1)
        img.set_sform(RAS, code=2)
        names.append(save(img, f"dtype_{dtype}.nii"))

    # Orientations: RAS, LPS and oblique, with qform and sform both set (the usual scanner export).
    for label, aff in (("ras", RAS), ("lps", LPS), ("oblique", OBLIQUE)):
        img = nib.Nifti1Image(ramp("float32", -100, 900), aff)
        img.set_qform(aff, code=1)
        img.set_sform(aff, code=2)
        names.append(save(img, f"orient_{label}.nii.gz"))

    # qform only (sform code 0, sform rows left as garbage-free zeros) and sform only (qform code 0).
    img = nib.Nifti1Image(ramp("int16", -500, 1500), OBLIQUE)
    img.set_qform(OBLIQUE, code=1)
    img.set_sform(None, code=0)
    img.header["srow_x"] = [9, 0, 0, 0]   # must be ignored: sform_code is 0
    names.append(save(img, "qform_only.nii"))
    # qform with qfac = -1 (a left-handed voxel frame: negative determinant).
    lh = affine_from(rotation(0.1, 0.0, -0.2) @ np.diag([1.0, 1.0, -1.0]), (2.0, 2.0, 4.0), (1.0, 2.0, 3.0))
    img = nib.Nifti1Image(ramp("int16", 0, 1000), lh)
    img.set_qform(lh, code=1)
    img.set_sform(None, code=0)
    names.append(save(img, "qform_only_qfac_negative.nii"))
    # sform with a shear (no quaternion can carry it), qform set to something else that must be ignored.
    sheared = LPS.copy()
    sheared[0, 1] = 0.3
    img = nib.Nifti1Image(ramp("float32", 0, 1), sheared)
    img.set_sform(sheared, code=2)
    img.set_qform(RAS, code=0)
    names.append(save(img, "sform_only_shear.nii"))
    # No codes at all: diag(pixdim).
    img = nib.Nifti1Image(ramp("uint8", 0, 200), RAS)
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    names.append(save(img, "no_codes.nii"))

    # Scaled int16, as scanners export: float values stored as int16 with the slope and intercept nibabel chooses.
    values = ramp("float32", -1024.0, 3071.0) + np.float32(0.37)
    img = nib.Nifti1Image(values, LPS, dtype=np.int16)
    img.set_qform(LPS, code=1)
    img.set_sform(LPS, code=2)
    names.append(save(img, "scaled_int16.nii.gz"))

    # Containers: .hdr/.img pair, gzipped pair, NIfTI-2, big-endian, ANALYZE 7.5.
    img = nib.Nifti1Pair(ramp("int16", -1000, 2000), OBLIQUE)
    img.set_qform(OBLIQUE, code=1)
    img.set_sform(OBLIQUE, code=2)
    names.append(save(img, "pair.hdr"))
    img = nib.Nifti1Pair(ramp("float32", -3, 3), LPS)
    img.set_qform(LPS, code=1)
    img.set_sform(LPS, code=2)
    names.append(save(img, "pair_gz.hdr.gz"))
    img = nib.Nifti2Image(ramp("float64", -10, 10), OBLIQUE)
    img.set_qform(OBLIQUE, code=1)
    img.set_sform(OBLIQUE, code=2)
    names.append(save(img, "nifti2.nii"))
    img = nib.Nifti2Image(ramp("int16", -10, 10), RAS)
    img.set_qform(RAS, code=1)
    img.set_sform(RAS, code=2)
    names.append(save(img, "nifti2.nii.gz"))
    big_hdr = nib.Nifti1Header(endianness=">")
    img = nib.Nifti1Image(ramp(">i2", -300, 3000), LPS, big_hdr)
    img.set_qform(LPS, code=1)
    img.set_sform(LPS, code=2)
    names.append(save(img, "big_endian.nii"))
    img = nib.AnalyzeImage(ramp("int16", 0, 4000), np.diag([1.25, 1.5, 2.0, 1.0]))
    names.append(save(img, "analyze.hdr"))

    # 4-D: 3 volumes of 5×4×3.
    four = np.stack([ramp("float32", t * 100, t * 100 + 50, (5, 4, 3)) for t in range(3)], axis=-1)
    img = nib.Nifti1Image(four, RAS)
    img.set_qform(RAS, code=1)
    img.set_sform(RAS, code=2)
    names.append(save(img, "four_d.nii.gz"))

    expected = {"fixtures": {n: describe(os.path.join(HERE, n)) for n in names}, "real": {}}
    for name in sorted(os.listdir(REAL)):
        if name.endswith(".nii.gz"):
            expected["real"][name] = describe(os.path.join(REAL, name))
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(HERE, n)) for n in os.listdir(HERE))
    print(f"{len(names)} fixtures, folder {total} bytes")


def verify_roundtrip(folder):
    """Each Swift-written file <name>.<ext> beside a source.json (written by the Swift test) naming its source."""
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    results = {}
    for entry in manifest:
        written = nib.load(os.path.join(folder, entry["written"]))
        source = nib.load(entry["source"])
        a = np.asanyarray(written.dataobj).astype(np.float64)
        b = np.asanyarray(source.dataobj).astype(np.float64)
        if entry.get("volume") is not None:
            b = b[..., entry["volume"]]
        # MR2CT holds voxels as float32, then rounds half away from zero and clips for int16.
        b = b.astype(np.float32).astype(np.float64)
        if entry["datatype"] == "int16":
            b = np.clip(np.floor(np.abs(b) + 0.5) * np.sign(b), -32768, 32767)
        results[entry["written"]] = {
            "affine_max_abs_diff": float(np.abs(written.affine - source.affine).max()),
            "qform_code": int(written.header["qform_code"]), "sform_code": int(written.header["sform_code"]),
            "source_codes": [int(source.header["qform_code"]), int(source.header["sform_code"])]
                            if isinstance(source.header, nib.Nifti1Header) else [0, 0],
            "shape_equal": list(a.shape) == list(b.shape),
            "values_max_abs_diff": float(np.abs(a - b).max()) if a.shape == b.shape else None,
            "stored_dtype": str(written.get_data_dtype()),
        }
    with open(os.path.join(HERE, "roundtrip_nibabel.json"), "w") as f:
        json.dump({"nibabel": nib.__version__, "files": results}, f, indent=1, sort_keys=True)
        f.write("\n")
    bad = {k: v for k, v in results.items()
           if v["affine_max_abs_diff"] > 1e-4 or not v["shape_equal"] or v["values_max_abs_diff"] > 1e-3}
    print(f"{len(results)} round-tripped files checked by nibabel; {len(bad)} disagree")
    for k, v in bad.items():
        print(" ", k, v)
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--verify-roundtrip":
        sys.exit(verify_roundtrip(sys.argv[2]))
    make()
