#!/usr/bin/env bash
# The README's main job on a fresh machine: install what is missing, build, convert a held-out phantom MR into a
# synthetic CT with the bundled unpaired models (an ensemble of two CycleGAN runs, each slice also predicted
# mirrored) and with the bundled paired model (pix2pix-style L1, trained on registered pairs), and score both against
# that subject's true CT (MAE, ME, PSNR, SSIM).
# Usage: Pipelines/demo.sh [OUTPUT_DIR]   (default: demo-output)
set -euo pipefail
cd "$(dirname "$0")/.."
bash Pipelines/setup.sh

mr2ct=.build/release/mr2ct
models=(--model SampleData/model/phantom_G_A.safetensors --model SampleData/model/phantom_G_A_2.safetensors)
paired=SampleData/model/phantom_paired_G.safetensors
mr=SampleData/phantoms/heldout/mr/sub-101.nii.gz
ct=SampleData/phantoms/heldout/ct/sub-101.nii.gz
out=${1:-demo-output}
mkdir -p "$out" "$out/paired"

# One JSON line per volume on stdout (kept in convert.ndjson); progress on stderr.
"$mr2ct" convert "${models[@]}" "$mr" -o "$out" --overwrite --mirror-average --preview "$out" | tee "$out/convert.ndjson"
# One JSON line per volume and a summary line; the same table as CSV.
"$mr2ct" evaluate --pred "$out/sub-101_sct.nii.gz" --ref "$ct" --csv "$out/metrics.csv" | tee "$out/metrics.ndjson"
# The same MR through the paired model (into demo-output/paired/).
"$mr2ct" convert --model "$paired" "$mr" -o "$out/paired" --overwrite --mirror-average --preview "$out/paired" \
  | tee "$out/paired/convert.ndjson"
"$mr2ct" evaluate --pred "$out/paired/sub-101_sct.nii.gz" --ref "$ct" --csv "$out/paired/metrics.csv" \
  | tee "$out/paired/metrics.ndjson"

field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1" | head -n 1; }
echo
echo "Synthetic CT: $(field "$out/convert.ndjson" output)"
echo "PNG preview:  $(field "$out/convert.ndjson" preview)"
score() { printf '%-38s MAE %.1f HU, ME %.1f HU, PSNR %.2f dB, SSIM %.3f\n' "$1" \
  "$(field "$2" mae)" "$(field "$2" me)" "$(field "$2" psnr)" "$(field "$2" ssim)"; }
echo "Against the true CT, inside the body:"
score "unpaired (CycleGAN ensemble):" "$out/metrics.ndjson"
score "paired (trained on registered pairs):" "$out/paired/metrics.ndjson"
echo "Paired synthetic CT: $(field "$out/paired/convert.ndjson" output)"
echo "Metrics tables: $out/metrics.csv, $out/paired/metrics.csv"
