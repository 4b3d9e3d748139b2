#!/usr/bin/env python3
"""Golden fixtures for MR2CT's paired (pix2pix) training, computed with PyTorch (2.x) in float64.

    cd Tests/TestSupport/Fixtures/torch && python3 make_pix2pix_goldens.py

As make_goldens.py: float32 inputs and weights, every reference value computed in float64 and stored as F32; the
same computation in float32 is recorded as "torch_f32_error" (max |a - b| / max |b|) in the metadata.

Files:
  unet_io.safetensors        per case "<case>.<field>" for UnetGenerator(1, 1, num_downs 5, ngf 2), batch and
                             instance normalisation, no dropout, train mode, input 2x1x32x32: the state_dict before
                             ("<case>.before.<key>", BatchNorm buffers included), output, grad_output, grad_input,
                             "<case>.grad.<key>", and the BatchNorm running statistics after the pass
                             ("<case>.after.<buffer key>").
  pix2pix_step.safetensors   per case one Pix2PixModel.optimize_parameters step (forward, D step on the fake pair
                             detached then the real pair, G step through the updated D: GAN + lambda_L1 * L1) with
                             G = UnetGenerator(1, 1, 5, ngf 2, batch norm, no dropout) and D =
                             NLayerDiscriminator(2, ndf 4, 3 layers, batch norm), Adam lr 2e-4 betas (0.5, 0.999):
                             "<case>.before.G.<key>", "<case>.before.D.<key>", real_A, real_B, body (mask), fake_B,
                             "<case>.grad.G.<key>", "<case>.grad.D.<key>", "<case>.after.G.<key>" (parameters and
                             buffers), "<case>.after.D.<key>"; metadata "cases" (settings and losses per case).
                             Case "reference": vanilla GAN, lambda_L1 100 (pix2pix's defaults). Case "body_lsgan":
                             LSGAN, lambda_GAN 0.5, L1 only inside the body mask (sum over the mask / its count) --
                             MR2CT's --lambda-gan and --l1-in-body. Case "l1_only": lambda_GAN 0, no D (pure L1).
  unet_pix2pix_G.safetensors a pix2pix UnetGenerator(1, 1, num_downs 5, ngf 2, batch norm) state dict after two
                             training passes (running statistics moved), torch.save()d as a .pth and converted by
                             Pipelines/convert_pytorch_generator.py --family pix2pix (the PyTorch -> MR2CT path),
                             preprocessing sliceSize 32.
  unet_pix2pix_io.safetensors  input (2x1x32x32) and that network's output in eval mode (running statistics, as
                             mr2ct convert runs it).
"""
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT / "Pipelines"))
sys.path.insert(0, str(HERE))
from pytorch_reference_networks import (NLayerDiscriminator, UnetGenerator, batch_norm, init_weights,  # noqa: E402
                                        instance_norm)
from make_goldens import GEN, randn, rel_error, save, uniform, zero_gradient_names  # noqa: E402  (shared helpers)


def initialise(net):
    """normal(0, 0.02) weights, random biases; BatchNorm scales normal(1, 0.02) and, so that a wrong shift shows up,
    shifts normal(0, 0.02)."""
    init_weights(net, random_biases=True, generator=GEN)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.bias.copy_(randn(*m.bias.shape, scale=0.02))


def state(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def make_unet_io():
    tensors, cases = {}, {}
    x = uniform(2, 1, 32, 32)
    for name, norm in (("batch", batch_norm()), ("instance", instance_norm())):
        net = UnetGenerator(1, 1, 5, ngf=2, norm_layer=norm, use_dropout=False)
        initialise(net)
        results = {}
        for dtype in (torch.float64, torch.float32):
            m = copy.deepcopy(net).to(dtype).train()
            xi = x.to(dtype).clone().requires_grad_(True)
            y = m(xi)
            if dtype == torch.float64:
                grad_output = randn(*y.shape)
            (y * grad_output.to(dtype)).sum().backward()
            r = {"output": y, "grad_input": xi.grad}
            r.update({"grad." + k: p.grad for k, p in m.named_parameters()})
            r.update({"after." + k: b for k, b in m.named_buffers() if not k.endswith("num_batches_tracked")})
            results[dtype] = r
        ref, single = results[torch.float64], results[torch.float32]
        tensors[f"{name}.input"] = x.clone()
        tensors[f"{name}.grad_output"] = grad_output
        tensors.update({f"{name}.before.{k}": v for k, v in state(net).items()})
        tensors.update({f"{name}.{k}": v for k, v in ref.items()})
        zero = zero_gradient_names({k: v for k, v in ref.items() if k.startswith("grad.")})
        cases[name] = {"config": {"inputChannels": 1, "outputChannels": 1, "ngf": 2, "downsamplings": 5, "dropout": False,
                                  "norm": name},
                       "zero_gradients": zero,
                       "torch_f32_error": max(rel_error(single[k], ref[k]) for k in ref if k not in zero)}
    save(HERE / "unet_io.safetensors", tensors, {"cases": cases,
         "reference": "pytorch-CycleGAN-and-pix2pix UnetGenerator (Pipelines/pytorch_reference_networks.py), PyTorch %s, float64" % torch.__version__})
    return {k: v["torch_f32_error"] for k, v in cases.items()}


def make_steps():
    real_A, real_B = uniform(1, 1, 32, 32), uniform(1, 1, 32, 32)
    body = torch.zeros(1, 1, 32, 32)
    body[:, :, 6:27, 4:29] = 1
    G = UnetGenerator(1, 1, 5, ngf=2, norm_layer=batch_norm(), use_dropout=False)
    D = NLayerDiscriminator(2, ndf=4, n_layers=3, norm_layer=batch_norm())
    initialise(G)
    initialise(D)
    settings = {"reference": {"ganLoss": "vanilla", "lambdaL1": 100.0, "lambdaGAN": 1.0, "l1InBody": False},
                "body_lsgan": {"ganLoss": "lsgan", "lambdaL1": 100.0, "lambdaGAN": 0.5, "l1InBody": True},
                "l1_only": {"ganLoss": "vanilla", "lambdaL1": 100.0, "lambdaGAN": 0.0, "l1InBody": False}}
    tensors = {"real_A": real_A, "real_B": real_B, "body": body}
    tensors.update({f"before.G.{k}": v for k, v in state(G).items()})
    tensors.update({f"before.D.{k}": v for k, v in state(D).items()})
    cases = {}

    def step(s, dtype):
        g, d = copy.deepcopy(G).to(dtype).train(), copy.deepcopy(D).to(dtype).train()
        A, B, M = real_A.to(dtype), real_B.to(dtype), body.to(dtype)
        opt_G = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_D = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        if s["ganLoss"] == "vanilla":
            criterion = nn.BCEWithLogitsLoss()
        else:
            criterion = nn.MSELoss()

        def gan(pred, is_real):
            return criterion(pred, torch.ones_like(pred) if is_real else torch.zeros_like(pred))

        fake_B = g(A)
        losses, grads = {}, {}
        adversarial = s["lambdaGAN"] > 0
        if adversarial:
            # backward_D: the fake pair detached, then the real pair; loss_D = (fake + real) / 2.
            for p in d.parameters():
                p.requires_grad = True
            opt_D.zero_grad()
            loss_D_fake = gan(d(torch.cat((A, fake_B), 1).detach()), False)
            loss_D_real = gan(d(torch.cat((A, B), 1)), True)
            ((loss_D_fake + loss_D_real) * 0.5).backward()
            grads.update({f"D.{k}": p.grad.detach().clone() for k, p in d.named_parameters()})
            opt_D.step()
            losses["D_fake"], losses["D_real"] = loss_D_fake.item(), loss_D_real.item()
            for p in d.parameters():
                p.requires_grad = False
        opt_G.zero_grad()
        if s["l1InBody"]:
            loss_L1 = ((fake_B - B).abs() * M).sum() / M.sum() * s["lambdaL1"]
        else:
            loss_L1 = nn.L1Loss()(fake_B, B) * s["lambdaL1"]
        loss_G = loss_L1
        if adversarial:
            loss_G_GAN = gan(d(torch.cat((A, fake_B), 1)), True) * s["lambdaGAN"]
            loss_G = loss_G + loss_G_GAN
            losses["G_GAN"] = loss_G_GAN.item()
        losses["G_L1"] = loss_L1.item()
        loss_G.backward()
        grads.update({f"G.{k}": p.grad.detach().clone() for k, p in g.named_parameters()})
        opt_G.step()
        after = {f"G.{k}": v.detach().clone() for k, v in g.state_dict().items()}
        if adversarial:
            after.update({f"D.{k}": v.detach().clone() for k, v in d.state_dict().items()})
        return losses, grads, after, fake_B.detach()

    for name, s in settings.items():
        losses, grads, after, fake = step(s, torch.float64)
        losses32, grads32, after32, fake32 = step(s, torch.float32)
        tensors[f"{name}.fake_B"] = fake
        tensors.update({f"{name}.grad.{k}": v for k, v in grads.items()})
        tensors.update({f"{name}.after.{k}": v for k, v in after.items()})
        errors = {"losses": max(abs(losses32[k] - losses[k]) / abs(losses[k]) for k in losses),
                  "gradients": max(rel_error(grads32[k], grads[k]) for k in grads),
                  "weights_after": max(rel_error(after32[k], after[k]) for k in after if not k.endswith("num_batches_tracked")),
                  "fake_B": rel_error(fake32, fake)}
        cases[name] = dict(s, losses=losses, torch_f32_error=errors)
    save(HERE / "pix2pix_step.safetensors", tensors, {
        "generator": {"inputChannels": 1, "outputChannels": 1, "ngf": 2, "downsamplings": 5, "dropout": False, "norm": "batch"},
        "discriminator": {"inputChannels": 2, "ndf": 4, "layers": 3}, "cases": cases,
        "optimizer": {"learningRate": 2e-4, "beta1": 0.5, "beta2": 0.999},
        "reference": "pytorch-CycleGAN-and-pix2pix pix2pix_model.optimize_parameters, PyTorch %s, float64" % torch.__version__})
    return {k: v["torch_f32_error"] for k, v in cases.items()}


def make_interop():
    from convert_pytorch_generator import convert_pix2pix
    net = UnetGenerator(1, 1, 5, ngf=2, norm_layer=batch_norm(), use_dropout=True)
    initialise(net)
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(uniform(2, 1, 32, 32))
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "latest_net_G.pth")
        torch.save(net.state_dict(), pth)
        config, _ = convert_pix2pix(pth, str(HERE / "unet_pix2pix_G.safetensors"), {"sliceSize": 32}, dropout=True)
    x = uniform(2, 1, 32, 32)
    m = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        y = m(x.double())
        y32 = copy.deepcopy(net).eval()(x)
    save(HERE / "unet_pix2pix_io.safetensors", {"input": x, "output": y},
         {"generator": config, "torch_f32_error": rel_error(y32, y),
          "reference": "pix2pix UnetGenerator in eval mode, PyTorch %s, float64" % torch.__version__})
    return rel_error(y32, y)


if __name__ == "__main__":
    summary = {"unet_io": make_unet_io(), "pix2pix_step": make_steps(), "interop": make_interop()}
    print(json.dumps(summary, indent=1))
    for name in ("unet_io.safetensors", "pix2pix_step.safetensors", "unet_pix2pix_G.safetensors", "unet_pix2pix_io.safetensors"):
        print(name, f"{(HERE / name).stat().st_size / 1e3:.1f} kB")
