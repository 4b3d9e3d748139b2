"""PyTorch's examples/dcgan networks (Radford et al. 2015), generalised to any image side that is a multiple of 16,
and the conditional variant MR2CT trains (Mirza & Osindero 2014, on the DC-GAN body).

examples/dcgan fixes the side at 64: a 4x4 stride-1 transposed convolution turns z (N x nz x 1 x 1) into 4x4, and four
4x4 stride-2 ones double it to 64. Here the first kernel is side/16 (4 at 64, so the 64x64 networks are exactly the
example's), which keeps the layer list and the state_dict names (main.0 ... main.13 / main.12) for every side.
The discriminator mirrors it: four 4x4 stride-2 convolutions to side/16, then a side/16 kernel to 1x1, Sigmoid.

Conditional: the generator's class is a learned embedding (label_embedding, n_classes x embed) concatenated to z,
the discriminator's a learned embedding (label_embedding, n_classes x label_channels*side*side) reshaped to
label_channels extra input channels.
"""
import torch
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3, side=64):
        super().__init__()
        assert side % 16 == 0 and side >= 16
        k0 = side // 16
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, k0, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self, ndf=64, nc=3, side=64):
        super().__init__()
        k0 = side // 16
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, k0, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x)


class ConditionalGenerator(nn.Module):
    def __init__(self, n_classes, embed, nz=100, ngf=64, nc=3, side=64):
        super().__init__()
        self.label_embedding = nn.Embedding(n_classes, embed)
        self.main = Generator(nz + embed, ngf, nc, side).main

    def forward(self, z, labels):
        e = self.label_embedding(labels).view(labels.shape[0], -1, 1, 1)
        return self.main(torch.cat([z, e], 1))


class ConditionalDiscriminator(nn.Module):
    def __init__(self, n_classes, label_channels=1, ndf=64, nc=3, side=64):
        super().__init__()
        self.side, self.label_channels = side, label_channels
        self.label_embedding = nn.Embedding(n_classes, label_channels * side * side)
        self.main = Discriminator(ndf, nc + label_channels, side).main

    def forward(self, x, labels):
        e = self.label_embedding(labels).view(labels.shape[0], self.label_channels, self.side, self.side)
        return self.main(torch.cat([x, e], 1))


def weights_init(m, generator=None):
    """examples/dcgan weights_init: Conv* weights N(0, 0.02), BatchNorm weights N(1, 0.02) and biases 0."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        with torch.no_grad():
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator, dtype=torch.float64) * 0.02)
    elif classname.find("BatchNorm") != -1:
        with torch.no_grad():
            m.weight.copy_(1 + torch.randn(m.weight.shape, generator=generator, dtype=torch.float64) * 0.02)
            m.bias.zero_()
