#!/usr/bin/env bash
# MR2CT vs PyTorch on this machine: `mr2ct bench` and Pipelines/bench/torch_peer.py, both with the same thread
# count, run alternately (MR2CT, PyTorch, MR2CT, PyTorch, ...) in one session, each configuration in its own
# process (so peak RSS is per configuration). Prints every JSON line, then per configuration the medians and the
# ratios MR2CT/PyTorch (below 1.0 = MR2CT faster / smaller).
#   Pipelines/bench/compare.sh [--rounds N] [--threads T] [--iterations I] [--inference-runs R] [--only 128|256]
#                              [--torch-active]
# Timed repetitions per process, unless --iterations / --inference-runs set both: 128² 5 training iterations and
# 50 inference slices (one slice takes ~0.04 s, so fewer are at the mercy of a single scheduler hiccup); 256²
# 2 iterations and 5 slices.
# Needs a release build (`swift build -c release --product mr2ct`, done here if missing; MR2CT_BIN overrides the
# binary) and `pip install torch`. PyTorch runs with OMP_WAIT_POLICY=PASSIVE unless --torch-active: on a machine
# shared with other work, OpenMP's spinning threads make PyTorch several times slower, so passive waiting is the
# stronger opponent (on an idle machine the two policies time alike).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=3 threads=2 iterations="" inference="" only="" policy=PASSIVE
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --inference-runs) inference=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --torch-active) policy=ACTIVE; shift ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
bin=${MR2CT_BIN:-.build/release/mr2ct}
[ -x "$bin" ] || swift build -c release --product mr2ct >&2
echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); torch OMP_WAIT_POLICY=$policy" >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
configs=("128 32 32 6" "256 64 64 9")
for round in $(seq 1 "$rounds"); do
  for c in "${configs[@]}"; do
    set -- $c
    [ -n "$only" ] && [ "$only" != "$1" ] && continue
    if [ "$1" = 128 ]; then its=${iterations:-5} runs=${inference:-50}; else its=${iterations:-2} runs=${inference:-5}; fi
    "$bin" bench --size "$1" --ngf "$2" --ndf "$3" --blocks "$4" --threads "$threads" --iterations "$its" \
      --inference-runs "$runs" | tee -a "$out"
    OMP_WAIT_POLICY=$policy python3 Pipelines/bench/torch_peer.py --size "$1" --ngf "$2" --ndf "$3" --blocks "$4" --threads "$threads" \
      --iterations "$its" --inference-runs "$runs" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("\n| config | MR2CT s/iter | PyTorch s/iter | ratio | MR2CT s/slice | PyTorch s/slice | ratio | MR2CT RSS MB | PyTorch RSS MB | ratio |")
print("|---|---|---|---|---|---|---|---|---|---|")
for size in sorted({r["size"] for r in rows}):
    m = [r for r in rows if r["size"] == size and r["engine"] == "mr2ct"]
    p = [r for r in rows if r["size"] == size and r["engine"].startswith("pytorch")]
    med = lambda rs, k: statistics.median(r[k] for r in rs)
    c = m[0]
    cells = [f"{size}², ngf {c['ngf']}, ndf {c['ndf']}, {c['blocks']} blocks"]
    for k in ("train_s_per_iter", "infer_s_per_slice", "peak_rss_mb"):
        a, b = med(m, k), med(p, k)
        cells += [f"{a:.4g}", f"{b:.4g}", f"{a / b:.2f}"]
    print("| " + " | ".join(cells) + " |")
print(f"(medians of {len(rows) // 2 // max(1, len({r['size'] for r in rows}))} alternating runs each)")
PY
