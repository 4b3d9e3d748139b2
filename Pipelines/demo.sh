#!/usr/bin/env bash
# The README's main job on a fresh machine: install what is missing, build, convert a held-out phantom MR into a
# synthetic CT with the bundled models (an ensemble of two training runs, each slice also predicted mirrored), and
# score it against that subject's true CT (MAE, ME, PSNR, SSIM).
# Usage: Pipelines/demo.sh [OUTPUT_DIR]   (default: demo-output)
set -euo pipefail
cd "$(dirname "$0")/.."
bash Pipelines/setup.sh

mr2ct=.build/release/mr2ct
models=(--model SampleData/model/phantom_G_A.safetensors --model SampleData/model/phantom_G_A_2.safetensors)
mr=SampleData/phantoms/heldout/mr/sub-101.nii.gz
ct=SampleData/phantoms/heldout/ct/sub-101.nii.gz
out=${1:-demo-output}
mkdir -p "$out"

# One JSON line per volume on stdout (kept in convert.ndjson); progress on stderr.
"$mr2ct" convert "${models[@]}" "$mr" -o "$out" --overwrite --mirror-average --preview "$out" | tee "$out/convert.ndjson"
# One JSON line per volume and a summary line; the same table as CSV.
"$mr2ct" evaluate --pred "$out/sub-101_sct.nii.gz" --ref "$ct" --csv "$out/metrics.csv" | tee "$out/metrics.ndjson"

field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1" | head -n 1; }
echo
echo "Synthetic CT: $(field "$out/convert.ndjson" output)"
echo "PNG preview:  $(field "$out/convert.ndjson" preview)"
printf 'Against the true CT, inside the body: MAE %.1f HU, ME %.1f HU, PSNR %.2f dB, SSIM %.3f\n' \
  "$(field "$out/metrics.ndjson" mae)" "$(field "$out/metrics.ndjson" me)" \
  "$(field "$out/metrics.ndjson" psnr)" "$(field "$out/metrics.ndjson" ssim)"
echo "Metrics table: $out/metrics.csv"
