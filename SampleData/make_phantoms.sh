#!/bin/sh
# Regenerates SampleData/phantoms exactly (bit-identical NIfTI content on this platform) with the mr2ct phantom command.
# Run from the package root:  sh SampleData/make_phantoms.sh   (builds mr2ct in release mode if needed)
set -eu
cd "$(dirname "$0")/.."
MR2CT=${MR2CT:-.build/release/mr2ct}
[ -x "$MR2CT" ] || swift build -c release --product mr2ct
OUT=SampleData/phantoms
rm -rf "$OUT"
# Training MR: subjects 1-5; training CT: other subjects, 6-10 (unpaired, as in real CycleGAN training).
"$MR2CT" phantom --seed 1 --first 1   --subjects 5 --outputs mr        --out "$OUT/train"   --quiet > /dev/null
"$MR2CT" phantom --seed 1 --first 6   --subjects 5 --outputs ct        --out "$OUT/train"   --quiet > /dev/null
# Held-out pairs, never used in training: subjects 101-105, MR + CT (+ tissue labels) on the same grid.
"$MR2CT" phantom --seed 1 --first 101 --subjects 5 --outputs mr,ct,labels --out "$OUT/heldout" --quiet > /dev/null
# Checksums of the uncompressed NIfTI bytes (header + voxels), so that they do not depend on the gzip level.
( cd "$OUT" && for f in $(find . -name '*.nii.gz' | sort); do
    printf '%s  %s\n' "$(gunzip -c "$f" | sha256sum | cut -d' ' -f1)" "${f%.gz}"; done ) > "$OUT/SHA256SUMS"
echo "wrote $OUT (checksums of the uncompressed .nii in $OUT/SHA256SUMS)" >&2
