#!/usr/bin/env bash
# MR2CT vs PyTorch on this machine: `mr2ct bench` and Pipelines/bench/torch_peer.py, both with the same thread
# count, run alternately (MR2CT, PyTorch, MR2CT, PyTorch, ...) in one session, each configuration in its own
# process (so peak RSS is per configuration). Prints every JSON line, then per configuration the medians and the
# ratios MR2CT/PyTorch (below 1.0 = MR2CT faster / smaller).
#   Pipelines/bench/compare.sh [--rounds N] [--threads T] [--iterations I] [--inference-runs R] [--only 96|128|256]
#                              [--precision f32|bf16|both] [--torch-active] [--volume] [--keep-openblas-env]
# Configurations: 96² ngf 16 / ndf 32 / 6 blocks (the bundled models), 128² ngf 32 / 6, 256² ngf 64 / 9.
# --precision bf16 runs `mr2ct bench --precision bf16` against torch_peer.py --bf16 (torch.autocast bfloat16);
# `both` runs each configuration in both precisions. --volume adds the whole-volume conversion benchmark:
# `mr2ct convert` of a 256 × 256 × 150 MR with a 256²/ngf 64 generator against volume_peer.py (PyTorch + nibabel,
# the same steps), seconds per volume and peak RSS (GNU time), inputs made once by `volume_peer.py make`, in each
# precision of --precision (bf16: `convert --precision bf16` against the peer's --bf16 autocast).
# Timed repetitions per process, unless --iterations / --inference-runs set both: 128² 5 training iterations and
# 50 inference slices (one slice takes ~0.04 s, so fewer are at the mercy of a single scheduler hiccup); 256²
# 2 iterations and 5 slices.
# OpenBLAS's tuning variables (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, ...) are cleared for the whole run unless
# --keep-openblas-env: they pin its GEMMs to other kernels than the library picks for this CPU (the team's VMs
# export OPENBLAS_CORETYPE=Haswell, the AVX2 kernels, on an AVX-512 CPU), and PyTorch does not use OpenBLAS. The
# header names what was cleared; every MR2CT line names the kernels that ran ("blas_kernels").
# Needs a release build (`swift build -c release --product mr2ct`, done here if missing; MR2CT_BIN overrides the
# binary) and `pip install torch` (with --volume also nibabel and safetensors, for volume_peer.py). PyTorch runs
# with OMP_WAIT_POLICY=PASSIVE unless --torch-active: on a machine shared with other work, OpenMP's spinning threads
# make PyTorch several times slower, so passive waiting is the stronger opponent (on an idle machine the two
# policies time alike).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=3 threads=2 iterations="" inference="" only="" policy=PASSIVE precisions="f32" volume=0 keep_blas_env=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --inference-runs) inference=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --torch-active) policy=ACTIVE; shift ;;
    --precision) case "$2" in f32|bf16) precisions=$2 ;; both) precisions="f32 bf16" ;;
                   *) echo "compare.sh: --precision must be f32, bf16 or both" >&2; exit 64 ;; esac; shift 2 ;;
    --volume) volume=1; shift ;;
    --keep-openblas-env) keep_blas_env=1; shift ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
bin=${MR2CT_BIN:-.build/release/mr2ct}
[ -x "$bin" ] || swift build -c release --product mr2ct >&2
blas_env=$(env | grep '^OPENBLAS_' | tr '\n' ' ' || true)
if [ "$keep_blas_env" = 0 ]; then
  for v in $(env | grep -o '^OPENBLAS_[A-Z0-9_]*' || true); do unset "$v"; done
  blas_note="OpenBLAS environment cleared: ${blas_env:-none}"
else
  blas_note="OpenBLAS environment kept: ${blas_env:-none}"
fi
echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); torch OMP_WAIT_POLICY=$policy; $blas_note" >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
configs=("96 16 32 6" "128 32 32 6" "256 64 64 9")
vol=${MR2CT_VOLUME_DIR:-/tmp/mr2ct-volume-bench}
if [ "$volume" = 1 ] && [ ! -f "$vol/G.safetensors" ]; then python3 Pipelines/bench/volume_peer.py make "$vol" >&2; fi
for round in $(seq 1 "$rounds"); do
  for c in "${configs[@]}"; do
    set -- $c
    [ -n "$only" ] && [ "$only" != "$1" ] && continue
    case "$1" in 96) its=${iterations:-10} runs=${inference:-100} ;; 128) its=${iterations:-5} runs=${inference:-50} ;;
                 *) its=${iterations:-2} runs=${inference:-5} ;; esac
    for p in $precisions; do
      flag=""; [ "$p" = bf16 ] && flag=--bf16
      "$bin" bench --size "$1" --ngf "$2" --ndf "$3" --blocks "$4" --threads "$threads" --iterations "$its" \
        --inference-runs "$runs" --precision "$p" | tee -a "$out"
      OMP_WAIT_POLICY=$policy python3 Pipelines/bench/torch_peer.py --size "$1" --ngf "$2" --ndf "$3" --blocks "$4" \
        --threads "$threads" --iterations "$its" --inference-runs "$runs" $flag | tee -a "$out"
    done
  done
  if [ "$volume" = 1 ]; then
    for p in $precisions; do
      flag=""; [ "$p" = bf16 ] && flag=--bf16
      # GNU time's "Maximum resident set size" for MR2CT; the peer reports its own getrusage peak.
      /usr/bin/time -f '%e %M' -o "$out.time" "$bin" convert --model "$vol/G.safetensors" --threads "$threads" \
        --precision "$p" --overwrite --quiet -o "$vol/out-mr2ct" "$vol/mr.nii.gz" > /dev/null
      read -r secs kb < "$out.time"
      echo "{\"engine\": \"mr2ct\", \"task\": \"volume\", \"precision\": \"$p\", \"seconds_per_volume\": $secs, \"peak_rss_mb\": $((kb / 1024))}" | tee -a "$out"
      OMP_WAIT_POLICY=$policy python3 Pipelines/bench/volume_peer.py convert "$vol/mr.nii.gz" "$vol/G.pth" \
        "$vol/out-torch.nii.gz" --threads "$threads" $flag | tee -a "$out"
    done
  fi
done
python3 - "$out" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
rows = [r for r in lines if r.get("task") != "volume"]
volume = [r for r in lines if r.get("task") == "volume"]
print("\n| config | precision | MR2CT s/iter | PyTorch s/iter | ratio | MR2CT s/slice | PyTorch s/slice | ratio | MR2CT RSS MB | PyTorch RSS MB | ratio |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
prec = lambda r: "bf16" if r.get("precision", "f32").startswith("bf16") else "f32"
med = lambda rs, k: statistics.median(r[k] for r in rs)
for size, pr in sorted({(r["size"], prec(r)) for r in rows}):
    m = [r for r in rows if r["size"] == size and prec(r) == pr and r["engine"] == "mr2ct"]
    p = [r for r in rows if r["size"] == size and prec(r) == pr and r["engine"].startswith("pytorch")]
    if not m or not p: continue
    c = m[0]
    cells = [f"{size}², ngf {c['ngf']}, ndf {c['ndf']}, {c['blocks']} blocks", c.get("precision", "f32")]
    for k in ("train_s_per_iter", "infer_s_per_slice", "peak_rss_mb"):
        a, b = med(m, k), med(p, k)
        cells += [f"{a:.4g}", f"{b:.4g}", f"{a / b:.2f}"]
    print("| " + " | ".join(cells) + " |")
print(f"(medians of {len([r for r in rows if r['engine'] == 'mr2ct']) // max(1, len({(r['size'], prec(r)) for r in rows}))} alternating runs each)")
if volume:
    print("\n| whole volume 256×256×150, 256²/ngf 64 | precision | MR2CT s | PyTorch s | ratio | MR2CT RSS MB | PyTorch RSS MB | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for pr in sorted({prec(r) for r in volume}):
        m = [r for r in volume if r["engine"] == "mr2ct" and prec(r) == pr]
        p = [r for r in volume if r["engine"].startswith("pytorch") and r["engine"].endswith("-bf16") == (pr == "bf16")]
        if not m or not p: continue
        a, b = med(m, "seconds_per_volume"), med(p, "seconds_per_volume")
        ra, rb = med(m, "peak_rss_mb"), med(p, "peak_rss_mb")
        print(f"| convert | {pr} | {a:.4g} | {b:.4g} | {a / b:.2f} | {ra} | {rb} | {ra / rb:.2f} |")
PY
