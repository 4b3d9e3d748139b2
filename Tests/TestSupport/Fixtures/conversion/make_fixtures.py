#!/usr/bin/env python3
"""Makes the conversion test fixtures (run from this folder; needs torch, safetensors, nibabel, numpy):

  tiny_G_A.safetensors  a randomly initialised MR->CT ResNet generator built in PyTorch exactly as
                        pytorch-CycleGAN-and-pix2pix's ResnetGenerator (ngf 4, 1 residual block, InstanceNorm,
                        reflection padding, no dropout), state_dict names kept ("model.1.weight", ...), with the
                        mr2ct metadata: "generator", "preprocessing" (64-pixel axial slices), "direction".
  mr_lps_int16.nii.gz   a small head-like MR, int16 with scl_slope 2 / scl_inter 10, LPS voxel axes, an oblique
                        sform (code 4) different from its qform (code 1), xyzt_units mm+s.
  mr_ras_float.nii      a small MR, float32, RAS, anisotropic voxels, sform code 0 (qform only).
CI does not run this script; the committed files are what the tests use.
"""
import gzip
import json
import numpy as np
import nibabel as nib
import torch
import torch.nn as nn
from safetensors.torch import save_file


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), nn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.conv_block(x)


def resnet_generator(cin, cout, ngf, blocks):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7, bias=True), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2 ** i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=True),
                   nn.InstanceNorm2d(ngf * m * 2), nn.ReLU(True)]
    for _ in range(blocks):
        layers += [ResnetBlock(ngf * 4)]
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                   nn.InstanceNorm2d(ngf * m // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh()]
    net = nn.Sequential(*layers)
    wrapper = nn.Module()
    wrapper.model = net
    return wrapper


def tiny_model():
    torch.manual_seed(7)
    g = resnet_generator(1, 1, 4, 1)
    for name, p in g.named_parameters():   # the reference's init_weights('normal', 0.02)
        if name.endswith("weight"):
            nn.init.normal_(p, 0.0, 0.02)
        else:
            nn.init.zeros_(p)
    with torch.no_grad():                   # a visible output: the final bias sets the mean HU
        g.model[-2].bias.fill_(-0.3)
    generator = {"inputChannels": 1, "outputChannels": 1, "ngf": 4, "residualBlocks": 1, "dropout": False}
    preprocessing = {"plane": "axial", "contextSlices": 1, "sliceSize": 64, "ctWindow": [-1024.0, 3000.0],
                     "mrNormalization": {"percentile": {"lower": 0.5, "upper": 99.5}}, "minimumBodyFraction": 0.05}
    metadata = {"generator": json.dumps(generator), "preprocessing": json.dumps(preprocessing),
                "direction": "MR->CT", "format": "mr2ct-checkpoint-1", "role": "G_A",
                "made_by": "make_fixtures.py (PyTorch %s)" % torch.__version__}
    state = {k: v.detach().contiguous() for k, v in g.state_dict().items()}
    save_file(state, "tiny_G_A.safetensors", metadata=metadata)


def head(shape, rng):
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape[::-1]], indexing="ij")
    r = (x / 0.8) ** 2 + (y / 0.85) ** 2 + (z / 0.9) ** 2
    img = np.where(r < 1, 300 + 200 * np.cos(3 * x) * np.sin(2 * y), 5.0)
    img = np.where(r < 0.3, 700.0, img) + rng.normal(0, 8, r.shape)
    return np.transpose(np.clip(img, 0, None), (2, 1, 0))   # (nx, ny, nz) for nibabel


def volumes():
    rng = np.random.default_rng(11)
    a = head((36, 44, 18), rng)
    stored = np.round((a - 10) / 2).astype(np.int16)
    img = nib.Nifti1Image(stored, None)
    hdr = img.header
    q = np.array([[-1.2, 0, 0, 20], [0, -1.1, 0, 30], [0, 0, 2.5, -15], [0, 0, 0, 1]])
    theta = 0.15
    rot = np.array([[np.cos(theta), -np.sin(theta), 0, 0], [np.sin(theta), np.cos(theta), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    img.set_qform(q, code=1)
    img.set_sform(rot @ q, code=4)
    hdr.set_xyzt_units("mm", "sec")
    # nibabel resets scaling when it saves an integer array; patch scl_slope (byte 112) and scl_inter (116).
    img.update_header()
    hdr["vox_offset"] = 352
    raw = bytearray(img.header.binaryblock) + b"\0" * 4 + stored.tobytes(order="F")
    raw[112:120] = np.array([2.0, 10.0], dtype="<f4").tobytes()
    with gzip.GzipFile("mr_lps_int16.nii.gz", "wb", mtime=0) as f:
        f.write(bytes(raw))

    b = head((40, 32, 16), rng).astype(np.float32)
    img = nib.Nifti1Image(b, None)
    img.set_qform(np.diag([0.9, 1.3, 3.0, 1]) + np.array([[0, 0, 0, -18], [0, 0, 0, -20], [0, 0, 0, -24], [0, 0, 0, 0]]), code=2)
    img.set_sform(np.eye(4), code=0)
    img.header.set_xyzt_units("mm")
    nib.save(img, "mr_ras_float.nii")


if __name__ == "__main__":
    tiny_model()
    volumes()
