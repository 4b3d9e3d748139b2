#!/usr/bin/env python3
"""MR2CT's PyTorch peer for `mr2ct bench` (issue 4): the reference CycleGAN of pytorch-CycleGAN-and-pix2pix
(ResnetGenerator / ResnetBlock / NLayerDiscriminator with InstanceNorm2d, use_bias=True, the same module
names, so state_dict keys match MR2CT's: model.1.weight, model.10.conv_block.1.weight, ...), and its
training step (CycleGANModel.optimize_parameters: LSGAN, cycle L1 x10, identity x0.5, ImagePool(50),
Adam 2e-4 / (0.5, 0.999)) on random single-channel slices, batch 1.

Prints one JSON line with the keys of `mr2ct bench`. Needs only `pip install torch`. With --bf16, the training
step and the inference run under torch.autocast("cpu", dtype=torch.bfloat16) (the one line a PyTorch user adds;
convolutions in bf16 on oneDNN, master weights, Adam and reductions float32).
    python3 Pipelines/bench/torch_peer.py --size 128 --ngf 32 --ndf 32 --blocks 6 --threads 2 [--bf16]
"""
import argparse, contextlib, json, random, resource, time
import torch
import torch.nn as nn


class ResnetBlock(nn.Module):
    def __init__(self, dim, use_dropout=False):
        super().__init__()
        block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), nn.InstanceNorm2d(dim), nn.ReLU(True)]
        if use_dropout:
            block += [nn.Dropout(0.5)]
        block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), nn.InstanceNorm2d(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc=1, output_nc=1, ngf=64, n_blocks=9, use_dropout=False):
        super().__init__()
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=True), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for i in range(2):
            m = 2 ** i
            model += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=True),
                      nn.InstanceNorm2d(ngf * m * 2), nn.ReLU(True)]
        for _ in range(n_blocks):
            model += [ResnetBlock(ngf * 4, use_dropout)]
        for i in range(2):
            m = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                      nn.InstanceNorm2d(ngf * m // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc=1, ndf=64, n_layers=3):
        super().__init__()
        seq = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True),
                    nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True),
                nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def init_weights(net, gain=0.02):
    """init_weights(init_type='normal'): conv weights N(0, 0.02), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.0)


class ImagePool:
    def __init__(self, size):
        self.size, self.images = size, []

    def query(self, image):
        if self.size == 0:
            return image
        if len(self.images) < self.size:
            self.images.append(image)
            return image
        if random.uniform(0, 1) > 0.5:
            i = random.randint(0, self.size - 1)
            old = self.images[i].clone()
            self.images[i] = image
            return old
        return image


class CycleGAN:
    def __init__(self, ngf, ndf, blocks, lam_a=10.0, lam_b=10.0, lam_idt=0.5, lr=2e-4):
        self.GA, self.GB = ResnetGenerator(ngf=ngf, n_blocks=blocks), ResnetGenerator(ngf=ngf, n_blocks=blocks)
        self.DA, self.DB = NLayerDiscriminator(ndf=ndf), NLayerDiscriminator(ndf=ndf)
        for net in (self.GA, self.GB, self.DA, self.DB):
            init_weights(net)
        self.optG = torch.optim.Adam(list(self.GA.parameters()) + list(self.GB.parameters()), lr, betas=(0.5, 0.999))
        self.optD = torch.optim.Adam(list(self.DA.parameters()) + list(self.DB.parameters()), lr, betas=(0.5, 0.999))
        self.poolA, self.poolB = ImagePool(50), ImagePool(50)
        self.lam_a, self.lam_b, self.lam_idt = lam_a, lam_b, lam_idt
        self.mse, self.l1 = nn.MSELoss(), nn.L1Loss()

    def gan(self, pred, real):
        return self.mse(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))

    def step(self, A, B):
        """CycleGANModel.optimize_parameters."""
        fakeB = self.GA(A); recA = self.GB(fakeB); fakeA = self.GB(B); recB = self.GA(fakeA)
        for p in list(self.DA.parameters()) + list(self.DB.parameters()):
            p.requires_grad_(False)
        self.optG.zero_grad()
        idtA = self.GA(B); idtB = self.GB(A)
        l_idtA = self.l1(idtA, B) * self.lam_b * self.lam_idt
        l_idtB = self.l1(idtB, A) * self.lam_a * self.lam_idt
        l_gA = self.gan(self.DA(fakeB), True)
        l_gB = self.gan(self.DB(fakeA), True)
        l_cycA = self.l1(recA, A) * self.lam_a
        l_cycB = self.l1(recB, B) * self.lam_b
        (l_gA + l_gB + l_cycA + l_cycB + l_idtA + l_idtB).backward()
        self.optG.step()
        for p in list(self.DA.parameters()) + list(self.DB.parameters()):
            p.requires_grad_(True)
        self.optD.zero_grad()
        losses = {}
        for name, D, real, fake in (("dA", self.DA, B, self.poolB.query(fakeB)), ("dB", self.DB, A, self.poolA.query(fakeA))):
            loss = (self.gan(D(real), True) + self.gan(D(fake.detach()), False)) * 0.5
            loss.backward()
            losses[name] = loss.item()
        self.optD.step()
        losses.update(gA=l_gA.item(), gB=l_gB.item(), cycleA=l_cycA.item(), cycleB=l_cycB.item(),
                      idtA=l_idtA.item(), idtB=l_idtB.item())
        return losses


def conv_flops(model, size):
    flops = 0

    def hook(mod, inp, out):
        nonlocal flops
        if isinstance(mod, nn.Conv2d):
            flops += 2 * mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels * out.numel()
        elif isinstance(mod, nn.ConvTranspose2d):
            flops += 2 * mod.kernel_size[0] * mod.kernel_size[1] * mod.out_channels * inp[0].numel()
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    for h in hs:
        h.remove()
    return flops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--inference-runs", type=int, default=10)
    ap.add_argument("--bf16", action="store_true", help="torch.autocast to bfloat16 (training and inference)")
    a = ap.parse_args()
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    random.seed(0)
    model = CycleGAN(a.ngf, a.ndf, a.blocks)
    images = [(torch.rand(1, 1, a.size, a.size) * 2 - 1, torch.rand(1, 1, a.size, a.size) * 2 - 1) for _ in range(4)]
    with cast():
        model.step(*images[0])  # warm-up
    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    c = cpu()
    t = time.perf_counter()
    with cast():
        for i in range(a.iterations):
            model.step(*images[(i + 1) % 4])
    train = (time.perf_counter() - t) / a.iterations
    train_cpu = (cpu() - c) / a.iterations
    model.GA.eval()
    x = images[0][0]
    with torch.inference_mode(), cast():
        model.GA(x)
        c = cpu()
        t = time.perf_counter()
        for _ in range(a.inference_runs):
            model.GA(x)
        infer = (time.perf_counter() - t) / a.inference_runs
        infer_cpu = (cpu() - c) / a.inference_runs
    g = conv_flops(model.GA, a.size) / 1e9
    print(json.dumps({"engine": "pytorch-" + torch.__version__ + ("-bf16" if a.bf16 else ""), "precision": "bf16" if a.bf16 else "f32", "size": a.size, "ngf": a.ngf, "ndf": a.ndf,
                      "blocks": a.blocks, "threads": a.threads, "train_s_per_iter": round(train, 4),
                      "infer_s_per_slice": round(infer, 4), "gen_fwd_gflop": round(g, 3),
                      "infer_gflops_per_s": round(g / infer, 1),
                      "train_cpu_s_per_iter": round(train_cpu, 4), "infer_cpu_s_per_slice": round(infer_cpu, 4),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}, sort_keys=True))


if __name__ == "__main__":
    main()
