"""The calibration check of README "Accuracy on a real MR/CT pair": does matching the sCT's histogram to the training
CT's, plus averaging the last checkpoints, close the gap of an unpaired run? Uses nothing of the scored half but
its MR: the quantile map is fitted on the TRAINING half (the model's sCT of the training MR against the training
CT, inside the training half's scoring mask) and applied to the scored half's sCT.

  python3 Pipelines/experiments/meat_phantom_calibration.py MEAT RUN_LOWER RUN_UPPER [MR2CT]

MEAT is the split of meat_phantom_split.py, RUN_x the run trained on half x (`--preset sct`). Converts with each
run's last three checkpoints (--mirror-average) and prints per scored half the MAE of each checkpoint, of their
mean, and of both after calibration. Needs numpy and nibabel.
"""
import pathlib
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

meat, runs = pathlib.Path(sys.argv[1]), {"lower": pathlib.Path(sys.argv[2]), "upper": pathlib.Path(sys.argv[3])}
mr2ct = sys.argv[4] if len(sys.argv) > 4 else ".build/release/mr2ct"
load = lambda p: np.asarray(nib.load(p).dataobj).astype(float)
work = pathlib.Path(tempfile.mkdtemp(prefix="meat-calibration-"))


def sct(checkpoint, half):
    out = work / f"{checkpoint.parent.parent.name}-{checkpoint.name}-{half}"
    subprocess.run([mr2ct, "convert", "--model", str(checkpoint / "G_A.safetensors"), str(meat / half / "mr"), "-o",
                    str(out), "--mirror-average", "--quiet", "--overwrite"], check=True, stdout=subprocess.DEVNULL)
    return load(out / "meat_sct.nii.gz")


for trained, run in runs.items():
    scored = "upper" if trained == "lower" else "lower"
    ct_s, m_s = load(meat / scored / "ct/meat.nii.gz"), load(meat / scored / "score_mask/meat.nii.gz") > 0
    ct_t, m_t = load(meat / trained / "ct/meat.nii.gz"), load(meat / trained / "score_mask/meat.nii.gz") > 0
    checkpoints = sorted(p for p in (run / "checkpoints").glob("iter_*"))[-3:]
    on_scored = [sct(c, scored) for c in checkpoints]
    on_trained = [sct(c, trained) for c in checkpoints]
    mae = lambda p: round(float(np.abs(p[m_s] - ct_s[m_s]).mean()), 1)
    q = np.linspace(0.5, 99.5, 100)
    rows = {c.name: mae(p) for c, p in zip(checkpoints, on_scored)}
    for name, p, t in (("last", on_scored[-1], on_trained[-1]),
                       ("mean of 3", np.mean(on_scored, axis=0), np.mean(on_trained, axis=0))):
        rows[name] = mae(p)
        rows[name + ", calibrated"] = mae(np.interp(p, np.percentile(t[m_t], q), np.percentile(ct_t[m_t], q)))
    print(f"scored {scored} (trained on {trained}):", rows)
