#!/usr/bin/env python3
"""Expected data-parallel speed-up of `mr2ct train` on N nodes (issue 21), on paper.

    python3 Pipelines/bench/mpi_scaling_model.py

Weak scaling as DDP: every node trains batch 1 (its share) per iteration, so an iteration takes the node's compute
time T_c plus the all-reduce that is not hidden. Ring all-reduce of S bytes over N nodes (Patarasuk & Yuan 2009):
2 (N - 1) / N * S / bandwidth + 2 (N - 1) * latency per all-reduce, one all-reduce per bucket of at most 25 MB,
G's and D's gradients separately. Speed-up (samples/s against one node) = N * T_c / (T_c + T_comm), with no overlap
(an upper bound of the cost: MR2CT overlaps G's all-reduce with the discriminators' pass, which hides part of it).

Inputs: S measured here (allreduce_bytes in log.ndjson of `mpirun -n 2 mr2ct train`, Pipelines/bench/mpi_scaling.sh),
equal to the networks' parameter counts computed here (which split it into G and D); T_c measured on this 2-core
machine when it was quiet (Pipelines/bench/PERFORMANCE.md: `mr2ct bench`, 2 threads, batch 1).
"""
import math

# (name, (ngf, ndf, residual blocks), seconds of compute per iteration on one 2-core node: `mr2ct bench` on this
# Zen 3 VM when it was quiet, 2026-12-01 16:14 UTC, medians (Pipelines/bench/PERFORMANCE.md).
CONFIGS = [
    ("96², ngf 16, ndf 32, 6 blocks (sct preset)", (16, 32, 6), 0.241),
    ("128², ngf 32, ndf 32, 6 blocks", (32, 32, 6), 0.864),
    ("256², ngf 64, ndf 64, 9 blocks (reference)", (64, 64, 9), 12.68),
]
LINKS = [("10 GbE", 1.25e9, 50e-6), ("100 Gb/s InfiniBand", 12.5e9, 2e-6)]
BUCKET = 25 << 20


def resnet_params(ngf, blocks, cin=1, cout=1):
    p = cin * ngf * 49 + ngf                      # 7x7 stem
    c = ngf
    for _ in range(2):                            # two stride-2 convolutions
        p += c * 2 * c * 9 + 2 * c
        c *= 2
    p += blocks * 2 * (c * c * 9 + c)             # residual blocks
    for _ in range(2):                            # two transposed convolutions
        p += c * (c // 2) * 9 + c // 2
        c //= 2
    p += c * cout * 49 + cout
    return p


def patchgan_params(ndf, layers=3, cin=1):
    p = cin * ndf * 16 + ndf
    c = ndf
    for n in range(1, layers):
        nc = ndf * min(2 ** n, 8)
        p += c * nc * 16 + nc
        c = nc
    nc = ndf * min(2 ** layers, 8)
    p += c * nc * 16 + nc
    p += nc * 16 + 1
    return p


def allreduce(bytes_, n, bandwidth, latency):
    buckets = max(1, math.ceil(bytes_ / BUCKET))
    return 2 * (n - 1) / n * bytes_ / bandwidth + buckets * 2 * (n - 1) * latency


def main():
    print("| configuration | gradient MB / iteration (G + D) | link | " + " | ".join(f"N = {n}" for n in (4, 8, 16, 32, 64))
          + " | all-reduce at N = 64 |")
    print("|---|---|---|" + "---|" * 6)
    for name, (ngf, ndf, blocks), compute in CONFIGS:
        g = 2 * 4 * resnet_params(ngf, blocks)
        d = 2 * 4 * patchgan_params(ndf)
        for link, bandwidth, latency in LINKS:
            cells = []
            for n in (4, 8, 16, 32, 64):
                comm = allreduce(g, n, bandwidth, latency) + allreduce(d, n, bandwidth, latency)
                cells.append(f"{n * compute / (compute + comm):.1f}× ({100 * compute / (compute + comm):.0f} %)")
            comm64 = allreduce(g, 64, bandwidth, latency) + allreduce(d, 64, bandwidth, latency)
            print(f"| {name} | {(g + d) / 1e6:.2f} | {link} | " + " | ".join(cells) + f" | {1000 * comm64:.0f} ms |")


if __name__ == "__main__":
    main()
