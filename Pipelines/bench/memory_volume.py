"""The volume of README's conversion-memory figure: N³ int16 (default 512) at 0.5 mm, an elliptic body (value 600,
semi-axes 0.8 and 0.6 of the half-width) in every slice plus uniform noise 0-49 (seed 0), so that the body mask, the
generator over every slice, the QA and the write all run (a volume of zeros skips prediction). Needs numpy, nibabel.

  python3 Pipelines/bench/memory_volume.py /tmp/body512.nii.gz [N]
  .build/release/mr2ct bench --memory /tmp/body512.nii.gz --model SampleData/model/phantom_G_A.safetensors
"""
import sys

import nibabel as nib
import numpy as np

out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 512
x = np.linspace(-1, 1, n, dtype=np.float32)
X, Y = np.meshgrid(x, x, indexing="ij")
body = (((X / 0.8) ** 2 + (Y / 0.6) ** 2) < 1).astype(np.int16) * 600
volume = np.empty((n, n, n), np.int16)
rng = np.random.default_rng(0)
for k in range(n):
    volume[:, :, k] = body + rng.integers(0, 50, (n, n), dtype=np.int16)
image = nib.Nifti1Image(volume, np.diag([0.5, 0.5, 0.5, 1]))
image.header.set_xyzt_units("mm")
nib.save(image, out)
