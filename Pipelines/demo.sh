#!/usr/bin/env bash
# The README's main job: set up, build, and run MR2CT on the bundled sample data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Pipelines/setup.sh
mr2ct=.build/release/mr2ct
"$mr2ct" info SampleData/real/someones_anatomy.nii.gz
