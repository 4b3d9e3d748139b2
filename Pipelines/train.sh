#!/usr/bin/env bash
# Train an MR→CT CycleGAN with `mr2ct train`, then convert with the result. A short example to adapt:
#   bash Pipelines/train.sh MR_DIR CT_DIR RUN_DIR [extra mr2ct train options]
# MR_DIR and CT_DIR are folders of NIfTI volumes (.nii/.nii.gz) from *different* patients (unpaired); CT in HU.
set -euo pipefail
cd "$(dirname "$0")/.."
mr=${1:?usage: train.sh MR_DIR CT_DIR RUN_DIR [options]}; ct=${2:?CT_DIR}; run=${3:?RUN_DIR}; shift 3
mr2ct=${MR2CT:-.build/release/mr2ct}
[ -x "$mr2ct" ] || swift build -c release --product mr2ct

# A small, CPU-friendly configuration (the reference is --slice-size 256 --ngf 64 --ndf 64 --residual-blocks 9,
# about 20 s per iteration on two cores). Everything below is stored in $run/config.json; running this script
# again on the same RUN_DIR continues the run where it stopped (Ctrl-C saves a checkpoint first).
"$mr2ct" train --mr "$mr" --ct "$ct" --run "$run" \
    --slice-size 128 --ngf 32 --ndf 32 --residual-blocks 6 \
    --epochs 20 --decay-epochs 20 \
    --checkpoint-every 500 --sample-every 250 --threads "$(nproc)" "$@" || status=$?

# The run folder: config.json, log.ndjson (one JSON line per iteration: jq -c 'select(.kind=="train")'),
# samples/*.png, report.html (open it in a browser), checkpoints/{latest,best,iter_NNNNNNN}/G_A.safetensors.
echo "report: $run/report.html" >&2
# The MR→CT generator is used directly from the run folder:
#   "$mr2ct" convert --model "$run" -o sct/ MR_FOLDER
exit "${status:-0}"   # 130/143: stopped by a signal, resumable
