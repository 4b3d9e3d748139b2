#!/usr/bin/env python3
"""Checks mr2ct's DICOM output with pydicom and nibabel (issue 19), independently of DCMTK; writes verification.json.

For each MR fixture series: `mr2ct convert --format dicom` and `mr2ct convert` (NIfTI) with the bundled model; then
pydicom reads every CT file and checks SOP class (CT Image Storage), Modality, ImageType, new Series/SOP Instance
UIDs (unique, ≤ 64 characters), the Patient/Study/Frame of Reference identity of the MR, the Image Plane attributes
of the MR slice the SourceImageSequence names (IPP/IOP/PixelSpacing equal), rescale (1, 0, HU), and that the
pixels (signed 16-bit) equal the NIfTI output read by nibabel at the same voxels (i = column, j = row, k = slice).

Run from the package root after building:  python3 Tests/TestSupport/Fixtures/dicom/verify_written_series.py .build/release/mr2ct
"""
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
import pydicom

HERE = os.path.dirname(os.path.abspath(__file__))
SERIES = ["axial_implicit_le", "sagittal_explicit_le_signed", "oblique_big_endian", "coronal_deflated", "oblique_jpegls",
          "axial_rle", "axial_jpeg_lossless", "axial_rescaled"]


def main():
    tool = os.path.abspath(sys.argv[1])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(HERE))))
    model = os.path.join(root, "SampleData/model/phantom_G_A.safetensors")
    out = tempfile.mkdtemp()
    inputs = [os.path.join(HERE, "series", s) for s in SERIES]
    subprocess.run([tool, "convert", "--quiet", "--model", model, "--format", "dicom", "-o", os.path.join(out, "dcm")] + inputs, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([tool, "convert", "--quiet", "--model", model, "-o", os.path.join(out, "nii")] + inputs, check=True,
                   stdout=subprocess.DEVNULL)
    results = {}
    for name in SERIES:
        mr = {}
        for f in os.listdir(os.path.join(HERE, "series", name)):
            d = pydicom.dcmread(os.path.join(HERE, "series", name, f))
            mr[d.SOPInstanceUID] = d
        mr0 = next(iter(mr.values()))
        folder = os.path.join(out, "dcm", name + "_sct")
        ct = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
        nifti = np.asarray(nib.load(os.path.join(out, "nii", name + "_sct.nii.gz")).dataobj)
        sop_uids = {c.SOPInstanceUID for c in ct}
        checks = {
            "files": len(ct) == len(mr),
            "sop_class_ct_image_storage": all(c.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" for c in ct),
            "modality_ct": all(c.Modality == "CT" for c in ct),
            "image_type_derived_secondary": all(list(c.ImageType)[:2] == ["DERIVED", "SECONDARY"] for c in ct),
            "one_new_series_uid": len({c.SeriesInstanceUID for c in ct}) == 1 and ct[0].SeriesInstanceUID != mr0.SeriesInstanceUID
                                  and len(ct[0].SeriesInstanceUID) <= 64 and ct[0].SeriesInstanceUID.startswith("2.25."),
            "sop_instance_uids_new_and_unique": len(sop_uids) == len(ct) and not (sop_uids & set(mr)),
            "patient_study_frame_copied": all(c.PatientID == mr0.PatientID and str(c.PatientName) == str(mr0.PatientName)
                                              and c.StudyInstanceUID == mr0.StudyInstanceUID
                                              and c.FrameOfReferenceUID == mr0.FrameOfReferenceUID
                                              and c.StudyDate == mr0.StudyDate for c in ct),
            "rescale_hu": all(float(c.RescaleSlope) == 1 and float(c.RescaleIntercept) == 0 and c.RescaleType == "HU" for c in ct),
            "signed_16_bit": all(c.BitsAllocated == 16 and c.PixelRepresentation == 1 for c in ct),
        }
        plane, pixels = True, True
        # Slice k of the NIfTI output is the k-th MR slice along the normal; the CT file names its MR slice.
        iop = np.array([float(v) for v in mr0.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        order = sorted(mr.values(), key=lambda d: float(np.dot([float(v) for v in d.ImagePositionPatient], normal)))
        for c in ct:
            source = mr[c.SourceImageSequence[0].ReferencedSOPInstanceUID]
            plane &= (list(c.ImagePositionPatient) == list(source.ImagePositionPatient)
                      and list(c.ImageOrientationPatient) == list(source.ImageOrientationPatient)
                      and list(c.PixelSpacing) == list(source.PixelSpacing))
            k = [d.SOPInstanceUID for d in order].index(source.SOPInstanceUID)
            pixels &= np.array_equal(c.pixel_array.astype(np.int32), nifti[:, :, k].T.astype(np.int32))
        checks["image_plane_of_its_mr_slice"] = bool(plane)
        checks["pixels_equal_nifti_output"] = bool(pixels)
        results[name] = {"transfer_syntax_of_mr": str(mr0.file_meta.TransferSyntaxUID), "checks": checks,
                         "hu_range": [int(min(c.pixel_array.min() for c in ct)), int(max(c.pixel_array.max() for c in ct))]}
    with open(os.path.join(HERE, "verification.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    failed = [(n, k) for n, r in results.items() for k, ok in r["checks"].items() if not ok]
    print("all checks passed" if not failed else f"FAILED: {failed}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
