#!/usr/bin/env bash
# Train an MR→CT CycleGAN with `mr2ct train`, then convert with the result. A short example to adapt:
#   bash Pipelines/train.sh MR_DIR CT_DIR RUN_DIR [extra mr2ct train options]
#   bash Pipelines/train.sh            # demo on SampleData/phantoms, run folder runs/phantom-demo
# MR_DIR and CT_DIR are folders of NIfTI volumes (.nii/.nii.gz) from *different* patients (unpaired); CT in HU.
set -euo pipefail
cd "$(dirname "$0")/.."
mr2ct=${MR2CT:-.build/release/mr2ct}
[ -x "$mr2ct" ] || swift build -c release --product mr2ct

if [ $# -ge 3 ]; then
    mr=$1; ct=$2; run=$3; shift 3
    validation=()
    length=(--epochs 20 --decay-epochs 20)
else
    # Demo: the bundled unpaired phantoms (MR of subjects 1-5, CT of other subjects 6-10) with the paired held-out
    # subjects 101-105 for validation.
    data=SampleData/phantoms; mr=$data/train/mr; ct=$data/train/ct; run=runs/phantom-demo
    validation=(--val-mr "$data/heldout/mr" --val-ct "$data/heldout/ct" --validate-every 200)
    length=(--iterations 400)
fi

# A small, CPU-friendly network (the reference is --slice-size 256 --ngf 64 --ndf 64 --residual-blocks 9, about
# 20 s per iteration on two cores). Everything is stored in $run/config.json; running this script again on the
# same RUN_DIR continues the run where it stopped (Ctrl-C saves a checkpoint first). Later options win.
status=0
"$mr2ct" train --mr "$mr" --ct "$ct" --run "$run" "${validation[@]}" \
    --slice-size 96 --spacing 2 --ngf 32 --ndf 32 --residual-blocks 6 \
    "${length[@]}" --checkpoint-every 100 --sample-every 100 --threads "$(nproc)" "$@" || status=$?

# The run folder: config.json, log.ndjson (one JSON line per iteration), samples/*.png, report.html (open it in a
# browser), checkpoints/{latest,best,iter_NNNNNNN}/G_A.safetensors (G_A: the MR→CT generator). Convert with:
#   "$mr2ct" convert --model "$run" -o sct/ MR_FOLDER
echo "report: $run/report.html" >&2
exit "$status"   # 130/143: stopped by a signal, resumable
