#!/usr/bin/env python3
"""Makes the DICOM fixtures of issue 19 and their independent references.

Series are written by pydicom 3 (uncompressed: implicit and explicit VR little endian, explicit VR big endian,
deflated; RLE lossless by pydicom's own encoder; JPEG-LS lossless by pyjpegls/CharLS) and by DCMTK's dcmcjpeg
(JPEG lossless process 14 SV1: pydicom has no JPEG lossless encoder). Each good series is converted by dcm2niix
(the reference reader, which decodes every syntax above with its own code; deflated
and JPEG-LS files are decoded by pydicom first, as Debian's dcm2niix reads neither) into references/<name>.nii; the
script checks with nibabel that dcm2niix's voxels are the values it wrote, world position by world position,
so the committed references are known good. Hostile series (tilt, missing/duplicated slices, uneven spacing,
mixed sizes, truncated file, wrong value length, huge Rows×Columns, multi-frame, JPEG 2000, non-image objects
only) have no reference: the Swift tests check each refusal.

Run from this folder:  python3 make_dicom_fixtures.py   (needs pydicom, pyjpegls, nibabel, numpy, dcm2niix, dcmcjpeg)
"""
import json
import os
import shutil
import subprocess
import tempfile

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         DeflatedExplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless,
                         MRImageStorage, generate_uid)
from pydicom.encaps import encapsulate

HERE = os.path.dirname(os.path.abspath(__file__))
SERIES = os.path.join(HERE, "series")
REFS = os.path.join(HERE, "references")
ROOT = "1.2.826.0.1.3680043.10.1019."   # fixture UIDs: deterministic, under a documentation root
COLS, ROWS, SLICES = 16, 12, 5
RNG = np.random.default_rng(19)
STUDY = ROOT + "1"
FRAME = ROOT + "2"


def uid(*parts):
    return ROOT + ".".join(str(p) for p in parts)


def base_dataset(series_uid, number, description, iop, ipp, spacing, thickness, instance, sop, rows, cols, signed):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop
    ds.PatientName = "Phantom^Fixture"
    ds.PatientID = "MR2CT-19"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = STUDY
    ds.StudyDate = "20261201"
    ds.StudyTime = "120000"
    ds.StudyID = "19"
    ds.AccessionNumber = "A19"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "MR2CT DICOM fixtures"
    ds.Modality = "MR"
    ds.Manufacturer = "pydicom"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.FrameOfReferenceUID = FRAME
    ds.PositionReferenceIndicator = ""
    ds.InstanceNumber = instance
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M"]
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.EchoTime = 10
    ds.RepetitionTime = 500
    ds.EchoTrainLength = 1
    ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in iop]
    ds.PixelSpacing = [f"{spacing[0]:.4f}", f"{spacing[1]:.4f}"]
    ds.SliceThickness = f"{thickness:.4f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    return ds


def rotation(ax, ay, az):
    ax, ay, az = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def write(ds, path, syntax, pixels):
    """Writes `ds` with `pixels` (rows × cols) in transfer syntax `syntax`."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = ROOT + "99"
    ds.file_meta = meta
    dtype = np.int16 if ds.PixelRepresentation == 1 else np.uint16
    pixels = pixels.astype(dtype)
    if syntax in (RLELossless, JPEGLSLossless):
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelData = pixels.tobytes()
        ds.compress(syntax, pixels)
        ds.save_as(path, enforce_file_format=True)
        return
    if syntax == JPEG2000Lossless:
        meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(30)])   # not decoded: refused by name first
        ds["PixelData"].VR = "OB"
        ds.save_as(path, enforce_file_format=True)
        return
    meta.TransferSyntaxUID = syntax
    if syntax == ExplicitVRBigEndian:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder(">")).tobytes()
        ds["PixelData"].VR = "OW"
        ds.save_as(path, enforce_file_format=True, little_endian=False, implicit_vr=False)
        return
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    ds.save_as(path, enforce_file_format=True)


def make_series(name, number, iop, first, step, spacing=(1.5, 1.25), syntax=ExplicitVRLittleEndian, signed=False,
                rescale=None, count=SLICES, rows=ROWS, cols=COLS, mutate=None, reverse_instances=True, folder=None,
                description=None, first_index=0):
    """Writes one series into series/<folder or name>; returns the list of (position, pixels) written."""
    out = os.path.join(SERIES, folder or name)
    os.makedirs(out, exist_ok=True)
    series_uid = uid(3, number)
    row, col = np.array(iop[:3], float), np.array(iop[3:], float)
    normal = np.cross(row, col)
    written = []
    order = RNG.permutation(count)   # shuffled file names
    for k in range(count):
        ipp = np.array(first, float) + k * np.array(step, float)
        lo, hi = (-1000, 3000) if signed else (0, 4000)
        pixels = RNG.integers(lo, hi, size=(rows, cols))
        instance = count - k if reverse_instances else k + 1   # InstanceNumber against the stacking order
        ds = base_dataset(series_uid, number, description or name, iop, ipp, spacing, float(np.linalg.norm(step)) or 1.0,
                          instance + first_index, uid(4, number, k + 1 + first_index), rows, cols, signed)
        if rescale:
            ds.RescaleSlope, ds.RescaleIntercept = f"{rescale[0]}", f"{rescale[1]}"
            ds.RescaleType = "US"
        if mutate:
            mutate(ds, k)
        write(ds, os.path.join(out, f"IM{number:02d}{order[k] + first_index:03d}"), syntax, pixels)
        written.append((ipp, pixels, ds))
    return out, written


AXIAL = [1, 0, 0, 0, 1, 0]


def main():
    for d in (SERIES, REFS):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    good = {}
    # Good series: orientation × transfer syntax, shuffled file names, InstanceNumber against the stacking order.
    good["axial_implicit_le"] = make_series("axial_implicit_le", 1, AXIAL, (-12, -7, 30), (0, 0, 2.5), syntax=ImplicitVRLittleEndian)
    good["axial_descending_ras_rows"] = make_series("axial_descending_ras_rows", 2, [-1, 0, 0, 0, -1, 0], (12, 7, 40), (0, 0, -3),
                                                    syntax=ExplicitVRLittleEndian)
    good["sagittal_explicit_le_signed"] = make_series("sagittal_explicit_le_signed", 3, [0, 1, 0, 0, 0, -1], (-20, -9, 15), (2, 0, 0),
                                                      syntax=ExplicitVRLittleEndian, signed=True)
    r = rotation(20, -10, 15)
    obl = list(r[:, 0]) + list(r[:, 1])
    good["oblique_big_endian"] = make_series("oblique_big_endian", 4, obl, (-10.5, 3.25, -8.0), tuple(2.2 * r[:, 2]),
                                             syntax=ExplicitVRBigEndian)
    good["coronal_deflated"] = make_series("coronal_deflated", 5, [1, 0, 0, 0, 0, -1], (-10, 20, 30), (0, -1.8, 0),
                                           syntax=DeflatedExplicitVRLittleEndian)
    good["axial_rescaled"] = make_series("axial_rescaled", 6, AXIAL, (0, 0, 0), (0, 0, 2), syntax=ExplicitVRLittleEndian,
                                         rescale=(0.5, -100))
    good["axial_rle"] = make_series("axial_rle", 7, AXIAL, (5, 5, 5), (0, 0, 3), syntax=RLELossless)
    r2 = rotation(-12, 25, 5)
    good["oblique_jpegls"] = make_series("oblique_jpegls", 8, list(r2[:, 0]) + list(r2[:, 1]), (1, 2, 3), tuple(1.5 * r2[:, 2]),
                                         syntax=JPEGLSLossless, signed=True)
    # JPEG lossless (process 14, SV1): written uncompressed by pydicom, then compressed by DCMTK's dcmcjpeg.
    out, written = make_series("axial_jpeg_lossless", 9, AXIAL, (-3, -3, -3), (0, 0, 2.5), syntax=ExplicitVRLittleEndian)
    for f in sorted(os.listdir(out)):
        p = os.path.join(out, f)
        subprocess.run(["dcmcjpeg", p, p + ".tmp"], check=True)
        os.replace(p + ".tmp", p)
    good["axial_jpeg_lossless"] = (out, written)
    # A folder with two series, a notes file and a DICOMDIR-like non-DICOM file: both series are found.
    good["two_series#" + uid(3, 10)] = make_series("two_a", 10, AXIAL, (0, 0, 0), (0, 0, 2), folder="two_series")
    good["two_series#" + uid(3, 11)] = make_series("two_b", 11, [0, 1, 0, 0, 0, -1], (0, 0, 0), (1.5, 0, 0), folder="two_series")
    with open(os.path.join(SERIES, "two_series", "notes.txt"), "w") as f:
        f.write("scanner export notes: not DICOM, ignored\n")

    # Hostile series: each refused with one line naming it.
    def tilt(ds, k):
        ds.GantryDetectorTilt = "15"
    make_series("gantry_tilt", 20, AXIAL, (0, 0, 0), (0, 0.6, 2.25), mutate=tilt)
    make_series("sheared_no_tag", 21, AXIAL, (0, 0, 0), (0.7, 0, 2))
    out, _ = make_series("missing_slice", 22, AXIAL, (0, 0, 0), (0, 0, 2), count=6)
    victim = [f for f in sorted(os.listdir(out)) if pydicom.dcmread(os.path.join(out, f)).InstanceNumber == 3][0]
    os.remove(os.path.join(out, victim))
    make_series("uneven_spacing", 23, AXIAL, (0, 0, 0), (0, 0, 2),
                mutate=lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 0, [0, 2, 4, 7, 9][k]]))
    make_series("mixed_sizes", 24, AXIAL, (0, 0, 0), (0, 0, 2), count=1, folder="mixed_sizes")
    make_series("mixed_sizes_b", 24, AXIAL, (0, 0, 2), (0, 0, 2), count=1, rows=10, folder="mixed_sizes",
                first_index=1)
    make_series("duplicate_slices", 25, AXIAL, (0, 0, 0), (0, 0, 2),
                mutate=lambda ds, k: setattr(ds, "ImagePositionPatient", [0, 0, [0, 2, 2, 4, 6][k]]))
    out, _ = make_series("truncated_file", 26, AXIAL, (0, 0, 0), (0, 0, 2))
    victim = os.path.join(out, sorted(os.listdir(out))[0])
    data = open(victim, "rb").read()
    open(victim, "wb").write(data[: len(data) - 100])
    out, _ = make_series("wrong_value_length", 27, AXIAL, (0, 0, 0), (0, 0, 2), syntax=ExplicitVRLittleEndian)
    victim = os.path.join(out, sorted(os.listdir(out))[0])
    data = bytearray(open(victim, "rb").read())
    at = data.find(b"\x08\x00\x3e\x10")  # (0008,103E) SeriesDescription, explicit VR: tag, "LO", 2-byte length
    data[at + 6: at + 8] = (60000).to_bytes(2, "little")
    open(victim, "wb").write(bytes(data))
    def huge(ds, k):
        ds.Rows, ds.Columns = 65535, 65535
    make_series("huge_matrix", 28, AXIAL, (0, 0, 0), (0, 0, 2), mutate=huge, count=2)
    make_series("multi_frame", 29, AXIAL, (0, 0, 0), (0, 0, 2), count=1,
                mutate=lambda ds, k: setattr(ds, "NumberOfFrames", "3"))
    make_series("jpeg2000", 30, AXIAL, (0, 0, 0), (0, 0, 2), syntax=JPEG2000Lossless, count=2)
    # Non-image objects only: a basic text structured report.
    os.makedirs(os.path.join(SERIES, "non_image_only"), exist_ok=True)
    sr = Dataset()
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    sr.SOPInstanceUID = uid(5, 1)
    sr.StudyInstanceUID, sr.SeriesInstanceUID, sr.Modality = STUDY, uid(3, 31), "SR"
    sr.PatientName, sr.PatientID = "Phantom^Fixture", "MR2CT-19"
    sr.file_meta = FileMetaDataset()
    sr.file_meta.MediaStorageSOPClassUID, sr.file_meta.MediaStorageSOPInstanceUID = sr.SOPClassUID, sr.SOPInstanceUID
    sr.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sr.save_as(os.path.join(SERIES, "non_image_only", "SR0001"), enforce_file_format=True)

    # Large enough for evaluate's 7-voxel SSIM window (made last, so the series above keep their random values).
    good["axial_evaluate"] = make_series("axial_evaluate", 32, AXIAL, (-20, -15, -10), (0, 0, 2), count=8, rows=20, cols=24)

    # References: dcm2niix's NIfTI of every good series, checked against the written values with nibabel.
    summary = {}
    for name, (folder, written) in good.items():
        tmp = tempfile.mkdtemp()
        src = folder
        if "#" in name:   # dcm2niix converts every series of a folder; copy this one's files alone
            src = tempfile.mkdtemp()
            for f in os.listdir(folder):
                p = os.path.join(folder, f)
                try:
                    if pydicom.dcmread(p).SeriesInstanceUID == written[0][2].SeriesInstanceUID:
                        shutil.copy(p, src)
                except Exception:
                    pass
        syntax = written[0][2].file_meta.TransferSyntaxUID
        if syntax in (DeflatedExplicitVRLittleEndian, JPEGLSLossless):
            # Debian's dcm2niix neither inflates nor decodes JPEG-LS: pydicom (zlib; pyjpegls/CharLS) writes
            # explicit VR little endian copies first.
            inflated = tempfile.mkdtemp()
            for f in os.listdir(src):
                d = pydicom.dcmread(os.path.join(src, f))
                if syntax == JPEGLSLossless:
                    d.decompress()
                else:
                    d.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                d.save_as(os.path.join(inflated, f), enforce_file_format=True)
            src = inflated
        subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "ref", "-o", tmp, src], check=True, capture_output=True)
        niftis = [f for f in os.listdir(tmp) if f.endswith(".nii")]
        assert len(niftis) == 1, (name, niftis)
        ref = nib.load(os.path.join(tmp, niftis[0]))
        data = np.asarray(ref.dataobj, dtype=np.float64) * (ref.dataobj.slope or 1) + (ref.dataobj.inter or 0) \
            if False else ref.get_fdata()
        inv = np.linalg.inv(ref.affine)
        ds0 = written[0][2]
        slope = float(getattr(ds0, "RescaleSlope", 1)); inter = float(getattr(ds0, "RescaleIntercept", 0))
        iop = np.array([float(v) for v in ds0.ImageOrientationPatient])
        dr, dc = (float(v) for v in ds0.PixelSpacing)
        # Every written pixel's LPS position (PS3.3 C.7.6.2.1.1) → RAS → dcm2niix voxel: value must match exactly.
        for ipp, pixels, _ in written:
            for j in range(pixels.shape[0]):
                for i in range(pixels.shape[1]):
                    lps = ipp + i * dc * iop[:3] + j * dr * iop[3:]
                    ras = np.array([-lps[0], -lps[1], lps[2], 1.0])
                    v = inv @ ras
                    idx = np.rint(v[:3]).astype(int)
                    assert np.abs(v[:3] - idx).max() < 1e-3, (name, v)
                    expected = pixels[j, i] * slope + inter
                    assert abs(data[tuple(idx)] - expected) < 1e-4, (name, data[tuple(idx)], expected)
        target = os.path.join(REFS, name.replace("#", "_") + ".nii")
        shutil.copy(os.path.join(tmp, niftis[0]), target)
        summary[name] = {"reference": os.path.basename(target), "transferSyntax": str(ds0.file_meta.TransferSyntaxUID)
                         if name != "axial_jpeg_lossless" else "1.2.840.10008.1.2.4.70",
                         "dcm2niixAffine": ref.affine.round(6).tolist(), "shape": list(data.shape)}
    with open(os.path.join(HERE, "references.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    print("wrote", len(good), "good series with dcm2niix references and the hostile series")


if __name__ == "__main__":
    main()
