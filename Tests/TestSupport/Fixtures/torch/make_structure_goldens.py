#!/usr/bin/env python3
"""Goldens for the MIND structure-consistency loss (NeuralNetwork/StructureLoss.swift).

    cd Tests/TestSupport/Fixtures/torch && python3 make_structure_goldens.py

An independent PyTorch float64 implementation of MIND (Heinrich et al. 2012) on the 2-D four-neighbourhood with
3 x 3 binomial patch weights, V = mean_r D_r + eps, MIND_r = exp(-(D_r - min_s D_s) / V), on the interior
(margin distance + 1), and of the loss scale * mean|MIND(image) - MIND(reference)| differentiated by autograd.
Images are smooth random fields plus a step edge, so neighbours never tie and |.| is never at 0.

File structure.safetensors: "<case>.{image,reference,descriptor,reference_descriptor,grad_image}" and scalar
"<case>.loss"; metadata "cases" = [{name, distance, epsilon, scale, channel}].
"""
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
GEN = torch.Generator().manual_seed(20261127)


def mind(image, distance, epsilon):
    """image: N x H x W (float64) -> N x 4 x (H - 2m) x (W - 2m)."""
    n, h, w = image.shape
    m = distance + 1
    weights = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    kernel = (weights[:, None] * weights[None, :] / 16).view(1, 1, 3, 3)
    planes = []
    for dy, dx in [(0, distance), (0, -distance), (distance, 0), (-distance, 0)]:
        # S_r(y) = (I(y) - I(y + r))^2 on the rows/columns m-1 .. H-m (the patches of the interior).
        y0, y1, x0, x1 = m - 1, h - m + 1, m - 1, w - m + 1
        diff = image[:, y0:y1, x0:x1] - image[:, y0 + dy:y1 + dy, x0 + dx:x1 + dx]
        planes.append(F.conv2d((diff * diff)[:, None], kernel)[:, 0])
    d = torch.stack(planes, 1)
    v = d.mean(1, keepdim=True) + epsilon
    minimum = d.min(1, keepdim=True).values
    return torch.exp(-(d - minimum) / v)


def smooth_field(n, h, w):
    coarse = torch.randn(n, 1, h // 3 + 2, w // 3 + 2, generator=GEN, dtype=torch.float64)
    field = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    step = torch.zeros(n, h, w, dtype=torch.float64)
    step[:, :, w // 2:] = 0.8
    return (0.5 * field + step + 0.05 * torch.randn(n, h, w, generator=GEN, dtype=torch.float64)).to(torch.float32)


def main():
    cases = [
        {"name": "d1_batch2", "distance": 1, "epsilon": 1e-3, "scale": 3.0, "channel": 0, "channels": 1, "height": 14, "width": 17},
        {"name": "d2_channel1", "distance": 2, "epsilon": 1e-2, "scale": 1.0, "channel": 1, "channels": 3, "height": 16, "width": 13},
    ]
    tensors = {}
    for case in cases:
        n, c, h, w = 2 if case["name"] == "d1_batch2" else 1, case["channels"], case["height"], case["width"]
        image = torch.stack([smooth_field(n, h, w) for _ in range(c)], 1)
        reference = torch.stack([smooth_field(n, h, w) for _ in range(c)], 1)
        ch, dist, eps = case["channel"], case["distance"], case["epsilon"]
        x = image.double().clone().requires_grad_(True)
        target = mind(reference[:, ch].double(), dist, eps)
        descriptor = mind(x[:, ch], dist, eps)
        loss = case["scale"] * (descriptor - target).abs().mean()
        loss.backward()
        key = case["name"]
        tensors[f"{key}.image"] = image.contiguous()
        tensors[f"{key}.reference"] = reference.contiguous()
        tensors[f"{key}.descriptor"] = descriptor.detach().float().contiguous()
        tensors[f"{key}.reference_descriptor"] = target.float().contiguous()
        tensors[f"{key}.grad_image"] = x.grad.float().contiguous()
        tensors[f"{key}.loss"] = loss.detach().float().reshape(1)
    save_file(tensors, str(HERE / "structure.safetensors"), metadata={"cases": json.dumps(cases)})
    print("wrote structure.safetensors:", ", ".join(c["name"] for c in cases))


if __name__ == "__main__":
    main()
