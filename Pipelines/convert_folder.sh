#!/usr/bin/env bash
# Convert every MR volume of a folder into a synthetic CT with a trained model.
#   Pipelines/convert_folder.sh MODEL MR_DIR OUT_DIR [more mr2ct convert options, e.g. --skip-existing]
# MODEL is a run folder of `mr2ct train` or a generator .safetensors file. One JSON line per volume goes to
# stdout (also kept in OUT_DIR/convert.ndjson), progress to stderr; exit 1 if any volume failed.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,5p' "$0" >&2; exit 64; fi
model=$1 mr_dir=$2 out_dir=$3; shift 3
mr2ct=${MR2CT:-"$(cd "$(dirname "$0")/.." && pwd)/.build/release/mr2ct"}   # MR2CT=... to use another build
mkdir -p "$out_dir"
# --preview writes a PNG of the central axial slice (MR | sCT) beside each output.
"$mr2ct" convert --model "$model" "$mr_dir" -o "$out_dir" --preview "$out_dir/previews" "$@" \
  | tee "$out_dir/convert.ndjson"
