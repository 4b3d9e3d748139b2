#!/usr/bin/env python3
"""Makes the old-run-folder fixture of issue 17 ("CycleGAN re-expressed on the Training layer with no behaviour
change"): a tiny CycleGAN run written by the mr2ct binary *before* the refactoring, so that the tests can check that
today's code still loads and resumes such a folder and computes the same numbers.

    python3 make_cyclegan_run_fixture.py /path/to/old/mr2ct

writes, next to this script:
    data/{mr,ct,val_mr,val_ct}/*.nii.gz   small synthetic heads (36 x 36 x 6 voxels; MR/CT-like intensities)
    run/                                  the run folder as the old binary left it after 4 iterations, minus the
                                          set of iteration 4, with checkpoints/latest -> iter_0000002 (what a run
                                          killed after its second checkpoint leaves: log lines past the set)
    expected_log.ndjson                   the old binary's complete, uninterrupted log of the 4 iterations

The run: slice size 32, ngf/ndf 8, one residual block, 2 discriminator layers, pool 3, 4 iterations, checkpoint and
validation every 2, seed 5, one thread (results depend on the thread count through reductions' order).
"""
import json, os, shutil, subprocess, sys
import numpy as np
import nibabel as nib

here = os.path.dirname(os.path.abspath(__file__))
ARGS = ["--slice-size", "32", "--ngf", "8", "--ndf", "8", "--residual-blocks", "1", "--discriminator-layers", "2",
        "--pool-size", "3", "--iterations", "4", "--checkpoint-every", "2", "--sample-every", "2",
        "--validate-every", "2", "--keep-checkpoints", "0", "--threads", "1", "--seed", "5", "--quiet"]


def head(ct, shape, scale, shift, seed):
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    i, j, k = np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij")
    cx, cy, cz = (nx - 1) / 2 + shift, (ny - 1) / 2, (nz - 1) / 2
    ax, ay, az = 0.42 * nx * scale, 0.36 * ny * scale, 0.55 * nz + 1
    r = np.sqrt(((i - cx) / ax) ** 2 + ((j - cy) / ay) ** 2 + ((k - cz) / az) ** 2)
    ventricle = (np.abs((i - cx) / (0.12 * ax)) < 1) & (np.abs((j - cy) / (0.3 * ay)) < 1)
    air, skin, skull, csf, brain = (-1000, 20, 1100, 8, 35) if ct else (0, 700, 60, 160, 420)
    v = np.select([r > 1, r > 0.92, r > 0.80, ventricle], [air, skin, skull, csf], brain).astype(np.float64)
    v += (12 if ct else 15) * rng.standard_normal(shape)
    if not ct:
        v = np.maximum(v, 0)
    affine = np.array([[1, 0, 0, -nx / 2], [0, 1, 0, -ny / 2], [0, 0, 3, -1.5 * nz], [0, 0, 0, 1]], float)
    image = nib.Nifti1Image(v.astype(np.float32), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return image


def main():
    binary = sys.argv[1]
    data = os.path.join(here, "data")
    shutil.rmtree(data, ignore_errors=True)
    for sub in ["mr", "ct", "val_mr", "val_ct"]:
        os.makedirs(os.path.join(data, sub))
    for n in range(2):
        nib.save(head(False, (36 + 2 * n, 36 - 2 * n, 6 + n), 1 - 0.05 * n, n, 1 + n), os.path.join(data, "mr", f"mr_{n}.nii.gz"))
        nib.save(head(True, (36 - 2 * n, 36 + 2 * n, 7 - n), 0.95 + 0.05 * n, -n, 101 + n), os.path.join(data, "ct", f"ct_{n}.nii.gz"))
    nib.save(head(False, (36, 36, 6), 1, 0, 7), os.path.join(data, "val_mr", "case_0.nii.gz"))
    nib.save(head(True, (36, 36, 6), 1, 0, 57), os.path.join(data, "val_ct", "case_0.nii.gz"))

    run = os.path.join(here, "run")
    shutil.rmtree(run, ignore_errors=True)
    subprocess.run([binary, "train", "--mr", os.path.join(data, "mr"), "--ct", os.path.join(data, "ct"),
                    "--val-mr", os.path.join(data, "val_mr"), "--val-ct", os.path.join(data, "val_ct"),
                    "--run", run] + ARGS, check=True)
    shutil.copyfile(os.path.join(run, "log.ndjson"), os.path.join(here, "expected_log.ndjson"))
    # The folder as a run killed after its second checkpoint leaves it (set 4 gone; latest at 2). Pictures, the
    # report and the slice cache are derived files (the cache is rebuilt from the data).
    checkpoints = os.path.join(run, "checkpoints")
    shutil.rmtree(os.path.join(checkpoints, "iter_0000004"))
    for link in ["latest", "best"]:
        path = os.path.join(checkpoints, link)
        if os.path.islink(path):
            os.unlink(path)
    os.symlink("iter_0000002", os.path.join(checkpoints, "latest"))
    records = [json.loads(l) for l in open(os.path.join(here, "expected_log.ndjson"))]
    validation = [r for r in records if r["kind"] == "validation" and r["iteration"] <= 2]
    if validation:
        os.symlink("iter_0000002", os.path.join(checkpoints, "best"))
    for derived in ["cache", "samples", "report.html", ".lock"]:
        path = os.path.join(run, derived)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


if __name__ == "__main__":
    main()
