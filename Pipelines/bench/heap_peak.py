"""Totals of a heap_peak.c dump by call site (development only): the live blocks of at least 256 KiB at the peak,
grouped by their first five frames outside libswiftCore, Swift names demangled with the toolchain's llvm-symbolizer
and swift-demangle.

  python3 Pipelines/bench/heap_peak.py /tmp/heap_peak.PID .build/release/mr2ct [TOOLCHAIN_BIN]
"""
import collections
import subprocess
import sys

dump, binary = sys.argv[1], sys.argv[2]
tools = sys.argv[3] if len(sys.argv) > 3 else "/opt/swift/usr/bin"
lines = open(dump).read().splitlines()
print(lines[0])
name = binary.rsplit("/", 1)[-1]
blocks, offsets = [], set()
for line in lines[1:]:
    parts = line.split()
    blocks.append((int(parts[1]), parts[2:]))
    offsets.update(f.split("+")[1] for f in parts[2:] if f.startswith(name + "+"))
offsets = sorted(offsets)
symbolized = subprocess.run([f"{tools}/llvm-symbolizer", "--obj", binary, "--functions=linkage", "--no-inlines"],
                            input="\n".join(offsets), capture_output=True, text=True).stdout.strip().split("\n\n")
linkage = [chunk.splitlines()[0] for chunk in symbolized]
demangled = subprocess.run([f"{tools}/swift-demangle", "--simplified", "--compact"], input="\n".join(linkage),
                           capture_output=True, text=True).stdout.splitlines()
names = {o: d[:100] for o, d in zip(offsets, demangled)}
totals = collections.defaultdict(lambda: [0, 0])
for size, frames in blocks:
    site = [names.get(f.split("+")[1], f) if f.startswith(name + "+") else f.split("+")[0]
            for f in frames[1:] if "libswiftCore" not in f][:5]
    totals[" < ".join(site)][0] += size
    totals[" < ".join(site)][1] += 1
for site, (size, count) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
    print(f"{size / 2**20:8.1f} MiB {count:4d} blocks  {site}")
