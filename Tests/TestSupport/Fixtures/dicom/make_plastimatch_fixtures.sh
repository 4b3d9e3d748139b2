#!/bin/sh
# DICOM series written by plastimatch (Debian 12's 1.9.4, `apt-get install plastimatch`) from two NIfTI fixtures: an
# independent NIfTI → DICOM writer (ITK's NIfTI reader, RAS → LPS in plastimatch) for DICOMReaderTests'
# plastimatch test, which reads each series with our reader and compares it with the NIfTI it came from.
#   plastimatch/oblique  ← ../nifti/orient_oblique.nii.gz  (5 × 6 × 7, oblique, float32: plastimatch writes int16
#                           with its own RescaleSlope/Intercept, so voxels come back quantised)
#   plastimatch/int16    ← ../nifti/dtype_int16.nii        (5 × 6 × 7, int16 over the full range: exact)
# (beside series/, not in it: the CLI tests count series/'s series)
# Then checks with pydicom and nibabel alone what plastimatch wrote (geometry, voxel differences) into plastimatch/plastimatch.json.
# Run from anywhere: Tests/TestSupport/Fixtures/dicom/make_plastimatch_fixtures.sh
set -eu
cd "$(dirname "$0")"
for pair in oblique:../nifti/orient_oblique.nii.gz int16:../nifti/dtype_int16.nii; do
    name=${pair%%:*}
    source=${pair#*:}
    rm -rf "plastimatch/$name"
    mkdir -p plastimatch
    plastimatch convert --input "$source" --output-dicom "plastimatch/$name" > /dev/null
done
python3 - <<'PY'
import glob, json, os, subprocess
import nibabel as nib
import numpy as np
import pydicom

out = {"plastimatch": subprocess.run(["plastimatch", "--version"], capture_output=True, text=True).stdout.strip()}
for name, source in [("oblique", "../nifti/orient_oblique.nii.gz"), ("int16", "../nifti/dtype_int16.nii")]:
    nifti = nib.load(source)
    data = nifti.get_fdata()
    files = [pydicom.dcmread(f) for f in glob.glob(f"plastimatch/{name}/*.dcm")]
    row, col = (np.array(files[0].ImageOrientationPatient[:3], float), np.array(files[0].ImageOrientationPatient[3:], float))
    normal = np.cross(row, col)
    files.sort(key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), normal)))
    ps = [float(v) for v in files[0].PixelSpacing]
    ipp = [np.array(d.ImagePositionPatient, float) for d in files]
    step = (ipp[-1] - ipp[0]) / (len(ipp) - 1)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row * ps[1], col * ps[0], step, ipp[0]
    ras = np.diag([-1, -1, 1, 1]) @ lps
    # Every DICOM voxel (i along a row, j down the columns, k along the stack) mapped into the NIfTI's grid.
    inv = np.linalg.inv(nifti.affine)
    worst_index, worst_value, slopes = 0.0, 0.0, set()
    for k, d in enumerate(files):
        slope, intercept = float(d.get("RescaleSlope", 1)), float(d.get("RescaleIntercept", 0))
        slopes.add(slope)
        values = d.pixel_array.astype(float) * slope + intercept
        for j in range(values.shape[0]):
            for i in range(values.shape[1]):
                r = inv @ ras @ np.array([i, j, k, 1.0])
                n = np.round(r[:3]).astype(int)
                worst_index = max(worst_index, float(np.abs(r[:3] - n).max()))
                worst_value = max(worst_value, abs(values[j, i] - data[tuple(n)]))
    out[name] = {"source": source, "files": len(files), "shape": list(data.shape),
                 "rescaleSlopes": sorted(slopes), "worstFractionalIndex": worst_index, "worstVoxelDifference": worst_value}
json.dump(out, open("plastimatch/plastimatch.json", "w"), indent=1)
print(json.dumps(out, indent=1))
PY
