#!/usr/bin/env bash
# Convert a folder with N processes on one machine, each taking one deterministic shard of the sorted input list
# (--shard I/N, I = 0 … N-1): every volume is converted exactly once, whatever N is.
#   Pipelines/parallel_convert.sh MODEL MR_DIR OUT_DIR [N] [more mr2ct convert options]
# N defaults to the number of cores; each process gets cores/N compute threads. Uses GNU parallel when installed,
# xargs -P otherwise. Exit status 1 if any shard had a failed volume. JSON lines of all shards go to stdout.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n '2,6p' "$0" >&2; exit 64; fi
model=$1 mr_dir=$2 out_dir=$3; shift 3
cores=$(nproc)
n=${1:-$cores}; [ $# -gt 0 ] && shift
threads=$(( cores / n > 0 ? cores / n : 1 ))
mr2ct=${MR2CT:-"$(cd "$(dirname "$0")/.." && pwd)/.build/release/mr2ct"}
mkdir -p "$out_dir"
if command -v parallel >/dev/null 2>&1; then
  # --line-buffer: whole JSON lines from concurrent shards, never interleaved mid-line.
  run() { parallel --will-cite --line-buffer -j "$n" "$@"; }
else
  run() { xargs -P "$n" -I{} "$@"; }
fi
# parallel and xargs report failures with their own codes; the script exits 1 like mr2ct itself.
seq 0 $((n - 1)) | run "$mr2ct" convert --model "$model" "$mr_dir" -o "$out_dir" \
  --threads "$threads" --shard {}/"$n" "$@" || exit 1
