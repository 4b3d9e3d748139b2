#!/usr/bin/env python3
"""Seed inputs for the DICOM-reader fuzzer (Sources/FuzzDICOMReader) from the committed fixture series.

Each fuzz input is up to three files of one folder joined by the separator of DICOMFuzzInput
(Sources/DICOMFuzzing/DICOMFuzzHarness.swift). For every series folder of Tests/TestSupport/Fixtures/dicom/series
this writes: its first file alone, its first three files, and its last three in reverse order (a shorter series,
or the hostile property - gap, tilt, duplicate - kept in a three-slice stack); for two_series two slices of one
series and one of the other. Standard library only.

Usage: Tests/Fuzz/dicom/make_seeds.py OUT_DIR
"""
import os
import sys

SEPARATOR = b"\x1fMR2CT-NEXT-FILE\x1f"
ROOT = os.path.dirname(os.path.abspath(__file__))
SERIES = os.path.join(ROOT, "..", "..", "TestSupport", "Fixtures", "dicom", "series")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    count = 0

    def write(name, paths):
        nonlocal count
        blobs = [open(p, "rb").read() for p in paths]
        assert all(SEPARATOR not in b for b in blobs), name
        with open(os.path.join(out, name), "wb") as f:
            f.write(SEPARATOR.join(blobs))
        count += 1

    for series in sorted(os.listdir(SERIES)):
        folder = os.path.join(SERIES, series)
        files = [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if not f.startswith(".")]
        write(series + "_first1", files[:1])
        if len(files) >= 2:
            write(series + "_first3", files[:3])
        if len(files) > 3:
            write(series + "_last3", files[-3:][::-1])
    two = os.path.join(SERIES, "two_series")
    write("two_series_mixed", [os.path.join(two, f) for f in ("IM10000", "IM11000", "IM10001")])
    print(f"{count} seeds in {out}")


if __name__ == "__main__":
    main()
