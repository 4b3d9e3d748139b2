#!/usr/bin/env python3
"""Whole-volume conversion benchmark (issue 20): the PyTorch + nibabel peer of `mr2ct convert`.

  python3 Pipelines/bench/volume_peer.py make DIR      # DIR/mr.nii.gz (256 x 256 x 150, int16, 1 mm), DIR/G.pth
                                                       # (ResnetGenerator ngf 64, 9 blocks, N(0, 0.02) weights) and
                                                       # DIR/G.safetensors (the same weights as an MR2CT model)
  python3 Pipelines/bench/volume_peer.py convert MR G.pth OUT.nii.gz [--threads 2] [--bf16]

`convert` does the steps of `mr2ct convert` a PyTorch user would write: read the NIfTI (nibabel), normalise the
MR to [-1, 1] (0.5 / 99.5 percentiles, as MR2CT's default intensity map), cut axial slices, run the generator per
slice (batch 1, inference mode), map tanh's [-1, 1] to -1024 ... 3000 HU (the model's ctWindow), reassemble, write an int16 NIfTI on the
MR's affine. MR2CT does more (body mask, QA checks, geometry checks), so the comparison favours PyTorch. Prints one
JSON line: seconds per volume and peak RSS.
"""
import argparse, json, os, resource, subprocess, sys, time
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__)))


def make(d):
    import nibabel as nib, torch
    from torch_peer import ResnetGenerator, init_weights
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[0:150, 0:256, 0:256].astype(np.float32)
    head = ((x - 128) / 100) ** 2 + ((y - 128) / 115) ** 2 + ((z - 75) / 70) ** 2 < 1
    mr = np.where(head, 600 + 300 * np.sin(x / 9) * np.cos(y / 13), 0) + rng.normal(0, 20, head.shape)
    img = nib.Nifti1Image(np.clip(mr, 0, 4000).astype(np.int16).transpose(2, 1, 0), np.diag([1.0, 1.0, 1.0, 1.0]))
    nib.save(img, os.path.join(d, "mr.nii.gz"))
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=64, n_blocks=9)
    init_weights(g)
    torch.save(g.state_dict(), os.path.join(d, "G.pth"))
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "convert_pytorch_generator.py"),
                    os.path.join(d, "G.pth"), os.path.join(d, "G.safetensors"),
                    "--preprocessing", json.dumps({"sliceSize": 256})], check=True)


def convert(a):
    import nibabel as nib, torch, contextlib
    from torch_peer import ResnetGenerator
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    g = ResnetGenerator(ngf=64, n_blocks=9)
    g.load_state_dict(torch.load(a.model, weights_only=True))
    g.eval()
    img = nib.load(a.mr)
    mr = np.asarray(img.dataobj, dtype=np.float32)
    lo, hi = np.percentile(mr, [0.5, 99.5])
    norm = np.clip((mr - lo) / max(hi - lo, 1e-6) * 2 - 1, -1, 1).astype(np.float32)
    out = np.empty(mr.shape, dtype=np.float32)
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext
    with torch.inference_mode(), cast():
        for k in range(mr.shape[2]):
            s = torch.from_numpy(np.ascontiguousarray(norm[:, :, k].T))[None, None]
            out[:, :, k] = g(s)[0, 0].float().numpy().T
    hu = np.round((out + 1) / 2 * (3000 + 1024) - 1024).astype(np.int16)
    nib.save(nib.Nifti1Image(hu, img.affine, img.header), a.out)
    seconds = time.perf_counter() - t0
    print(json.dumps({"engine": "pytorch-" + torch.__version__ + ("-bf16" if a.bf16 else ""), "task": "volume",
                      "shape": list(mr.shape), "threads": a.threads, "seconds_per_volume": round(seconds, 3),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}, sort_keys=True))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make"); m.add_argument("dir")
    c = sub.add_parser("convert"); c.add_argument("mr"); c.add_argument("model"); c.add_argument("out")
    c.add_argument("--threads", type=int, default=2); c.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    make(a.dir) if a.cmd == "make" else convert(a)
