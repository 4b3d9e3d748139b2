#!/usr/bin/env bash
# The real-pair experiment of `mr2ct train --preset sct` (README "Accuracy on a real MR/CT pair"):
# split ../shared/data/meat_phantom along z, train unpaired on one half (its MR and its CT as two unrelated folders),
# convert the other half's MR and score it against its registered CT inside the object mask eroded by 4 mm, both ways.
# Needs numpy, scipy and nibabel for the split and the baselines (meat_phantom_split.py); everything else is mr2ct.
#   bash Pipelines/experiments/meat_phantom_preset.sh [OUT [TRAIN OPTION ...]]   (default /tmp/meat; about 2 × 20
#   minutes on 2 cores). Options after OUT go to both `mr2ct train` calls after `--preset sct` and override its
#   values, e.g. `bash Pipelines/experiments/meat_phantom_preset.sh /tmp/meat-la1 --lambda-a 1`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/meat}
shift $(( $# > 0 ? 1 : 0 ))
B=.build/release/mr2ct
[ -x "$B" ] || bash Pipelines/setup.sh
python3 Pipelines/experiments/meat_phantom_split.py ../shared/data/meat_phantom "$out"
for train in lower upper; do
  score=$([ $train = lower ] && echo upper || echo lower)
  "$B" train --preset sct "$@" --mr "$out/$train/mr" --ct "$out/$train/ct" --run "$out/run_$train"
  "$B" convert --model "$out/run_$train" "$out/$score/mr" -o "$out/sct_from_$train" --overwrite --mirror-average \
    --preview "$out/sct_from_$train"
  "$B" evaluate --pred "$out/sct_from_$train" --ref "$out/$score/ct" --mask "$out/$score/score_mask" \
    | tee "$out/metrics_trained_on_$train.ndjson"
done
cat "$out/baselines.json"
