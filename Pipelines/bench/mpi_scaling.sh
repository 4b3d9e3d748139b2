#!/usr/bin/env bash
# Issue 21's measured figures: for each configuration, `mr2ct train` on the bundled phantoms as one process with 2
# threads (batch 1 and batch 2) and as `mpirun -n 2` ranks with 1 thread each (batch 1 per rank: effective batch 2),
# then per run the median seconds per iteration, samples/s, all-reduce bytes and seconds per iteration (from
# log.ndjson, iterations after the first two), and the load average before and after.
#   Pipelines/bench/mpi_scaling.sh [--iterations I] [--only 96|128|256]
# Configurations: 96² ngf 16 / ndf 32 / 6 blocks (the sct preset's networks), 128² ngf 32 / ndf 32 / 6, 256² ngf 64
# / ndf 64 / 9 (the reference). Needs a release build (MR2CT_BIN overrides the binary) and openmpi-bin; python3 for
# the summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
iterations=12 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --iterations) iterations=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "mpi_scaling.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
mr2ct=${MR2CT_BIN:-.build/release/mr2ct}
[ -x "$mr2ct" ] || swift build -c release --product mr2ct
data=SampleData/phantoms/train
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
configs=("96 16 32 6" "128 32 32 6" "256 64 64 9")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for config in "${configs[@]}"; do
  read -r size ngf ndf blocks <<< "$config"
  [ -z "$only" ] || [ "$only" = "$size" ] || continue
  common=(train --mr "$data/mr" --ct "$data/ct" --slice-size "$size" --ngf "$ngf" --ndf "$ndf" --residual-blocks "$blocks"
          --iterations "$iterations" --checkpoint-every 100000 --sample-every 100000 --quiet --seed 1)
  "$mr2ct" "${common[@]}" --run "$work/$size-1x2-b1" --threads 2
  "$mr2ct" "${common[@]}" --run "$work/$size-1x2-b2" --threads 2 --batch-size 2
  mpirun --allow-run-as-root --oversubscribe -n 2 "$mr2ct" "${common[@]}" --run "$work/$size-2x1-b1" --threads 1
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work" <<'PY'
import json, os, statistics, sys
work = sys.argv[1]
print(f"{'run':<14} {'s/iter':>8} {'samples/s':>10} {'allreduce MB/iter':>18} {'allreduce s/iter':>17} {'waited s/iter':>14}")
for name in sorted(os.listdir(work), key=lambda n: (int(n.split('-')[0]), n)):
    lines = [json.loads(l) for l in open(os.path.join(work, name, "log.ndjson"))]
    train = [l for l in lines if l.get("kind") == "train"][2:]
    samples = (2 if name.endswith("b2") or name.split('-')[1] == "2x1" else 1)
    sec = statistics.median(l["seconds"] for l in train)
    mb = statistics.median(l.get("allreduce_bytes", 0) for l in train) / 1e6
    red = statistics.median(l.get("allreduce_seconds", 0) for l in train)
    wait = statistics.median(l.get("allreduce_wait_seconds", 0) for l in train)
    print(f"{name:<14} {sec:>8.3f} {samples / sec:>10.4f} {mb:>18.2f} {red:>17.4f} {wait:>14.4f}")
PY
