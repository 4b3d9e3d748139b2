#!/usr/bin/env python3
"""The PyTorch -> MR2CT DC-GAN interop fixture (needs torch + safetensors; CI uses the committed files).

    cd Tests/TestSupport/Fixtures/gan && python3 make_interop_fixture.py

A PyTorch examples/dcgan Generator (nz 16, ngf 8, 1 channel, 32 x 32: first kernel 2) with weights_init weights,
random BatchNorm affine parameters, the output layer's weights x 25 (images over the tanh range) and running statistics from five training-mode passes, saved with torch.save,
is converted by Pipelines/convert_pytorch_generator.py --family dcgan into dcgan_generator.safetensors. z.safetensors
holds a noise tensor z (6 x 16 x 1 x 1); expected_images.safetensors the images PyTorch makes of it in eval mode
(BatchNorm on its running statistics), computed in float64 ("images", 6 x 1 x 32 x 32). `mr2ct gan sample --model
dcgan_generator.safetensors --noise z.safetensors` must reproduce them within 1e-4.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT / "Pipelines"))
from pytorch_dcgan_networks import Generator, weights_init  # noqa: E402

gen = torch.Generator().manual_seed(20261202)
net = Generator(nz=16, ngf=8, nc=1, side=32)
net.apply(lambda m: weights_init(m, gen))
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
            m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
    net.main[12].weight.mul_(25)  # outputs across the tanh range, not all near 0
net.train()
with torch.no_grad():
    for _ in range(5):
        net(torch.randn(8, 16, 1, 1, generator=gen))
with tempfile.TemporaryDirectory() as tmp:
    pth = os.path.join(tmp, "netG_epoch_0.pth")
    torch.save(net.state_dict(), pth)
    subprocess.run([sys.executable, str(ROOT / "Pipelines" / "convert_pytorch_generator.py"), "--family", "dcgan", pth,
                    str(HERE / "dcgan_generator.safetensors")], check=True)
z = torch.randn(6, 16, 1, 1, generator=gen)
save_file({"z": z.contiguous()}, str(HERE / "z.safetensors"))
net64 = net.double().eval()
with torch.no_grad():
    images = net64(z.double()).float().contiguous()
save_file({"images": images}, str(HERE / "expected_images.safetensors"),
          metadata={"reference": "PyTorch %s examples/dcgan Generator, eval mode, float64" % torch.__version__})
print("images", tuple(images.shape), float(images.min()), float(images.max()))
