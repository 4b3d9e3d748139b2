#!/usr/bin/env python3
"""Golden fixtures for the engine's GAN layers and for one DC-GAN and one conditional-GAN training step, by PyTorch.

    cd Tests/TestSupport/Fixtures/torch && python3 make_gan_goldens.py

As make_goldens.py: references in float64 from float32 inputs and weights, stored as F32, with PyTorch's own
float32 error in the metadata ("torch_f32_error"); backward passes differentiate sum(output * G) for a random G.

Files:
  gan_layers.safetensors   Linear (with and without bias, 2-D and N x C x 1 x 1 input), Embedding, Reshape (view),
                           channel concatenation (torch.cat dim 1) of 4-D and 2-D tensors: "<case>.<field>";
                           metadata "cases".
  batchnorm_state.safetensors  a BatchNorm2d state_dict after three training passes, as PyTorch saves it
                           (num_batches_tracked I64), and an eval-mode forward with those statistics.
  dcgan_step.safetensors   one iteration of PyTorch examples/dcgan main.py (BCELoss, Adam 2e-4 betas (0.5, 0.999),
                           D on real then on fake.detach(), then G through D) at side 16, nz 8, ngf = ndf = 8,
                           batch 4, 1 channel: "before.G.*", "before.D.*" (parameters and buffers), "real",
                           "noise", "fake", "grad.G.*", "grad.D.*", "after.G.*", "after.D.*"; metadata "losses".
  cgan_step.safetensors    the same step for the conditional networks (3 classes, embedding 4, 1 label channel,
                           2 image channels), plus "labels"; the fakes are made for the real batch's labels.
"""
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT / "Pipelines"))
from pytorch_dcgan_networks import (ConditionalDiscriminator, ConditionalGenerator, Discriminator,  # noqa: E402
                                    Generator, weights_init)
from make_goldens import f32, rel_error, save  # noqa: E402  (the shared fixture helpers)

torch.use_deterministic_algorithms(True)
GEN = torch.Generator().manual_seed(20261201)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale).to(torch.float32)


def uniform(*shape, low=-1.0, high=1.0):
    return (torch.rand(*shape, generator=GEN, dtype=torch.float64) * (high - low) + low).to(torch.float32)


# MARK: - Layers

def make_layers():
    tensors, cases = {}, []

    def case(name, describe, module, inputs, integer_input=False):
        results = {}
        for dtype in (torch.float64, torch.float32):
            m = copy.deepcopy(module).to(dtype) if module is not None else None
            xs = [x if integer_input and i == 0 else x.to(dtype).clone().requires_grad_(True) for i, x in enumerate(inputs)]
            if describe["kind"] == "reshape":
                y = xs[0].view(xs[0].shape[0], *describe["shape"])
            elif describe["kind"] == "concat":
                y = torch.cat(xs, 1)
            else:
                y = m(xs[0].flatten(1) if describe["kind"] == "linear" else xs[0])  # Linear on N x C x 1 x 1: flattened
            if dtype == torch.float64:
                grad_output = randn(*y.shape)
            (y * grad_output.to(dtype)).sum().backward()
            r = {"output": y}
            for i, x in enumerate(xs):
                if x.requires_grad:
                    r[f"grad_input{i if len(xs) > 1 else ''}"] = x.grad
            if m is not None:
                for pname, p in m.named_parameters():
                    r["grad_" + pname] = p.grad
            results[dtype] = r
        ref, single = results[torch.float64], results[torch.float32]
        for i, x in enumerate(inputs):
            tensors[f"{name}.input{i if len(inputs) > 1 else ''}"] = x.to(torch.float32)
        tensors[f"{name}.grad_output"] = grad_output
        if module is not None:
            for pname, p in module.named_parameters():
                tensors[f"{name}.{pname}"] = p.detach()
        for k, v in ref.items():
            tensors[f"{name}.{k}"] = v
        cases.append(dict(describe, name=name, torch_f32_error=max(rel_error(single[k], ref[k]) for k in ref)))

    def linear(name, fin, fout, bias, shape):
        m = nn.Linear(fin, fout, bias=bias)
        with torch.no_grad():
            m.weight.copy_(randn(fout, fin, scale=0.3))
            if bias:
                m.bias.copy_(randn(fout, scale=0.3))
        case(name, dict(kind="linear", inputFeatures=fin, outputFeatures=fout, bias=bias), m, [randn(*shape)])

    linear("linear", 7, 5, True, (3, 7))
    linear("linear_nobias", 6, 4, False, (2, 6))
    linear("linear_from_nchw", 12, 3, True, (2, 12, 1, 1))

    m = nn.Embedding(5, 6)
    with torch.no_grad():
        m.weight.copy_(randn(5, 6))
    case("embedding", dict(kind="embedding", count=5, dimension=6), m,
         [torch.tensor([3, 0, 3, 4, 1], dtype=torch.long)], integer_input=True)

    case("reshape", dict(kind="reshape", shape=[3, 2, 2]), None, [randn(2, 12)])
    case("reshape_to_nchw", dict(kind="reshape", shape=[6, 1, 1]), None, [randn(4, 6)])
    case("concat", dict(kind="concat"), None, [randn(2, 3, 4, 5), randn(2, 2, 4, 5)])
    case("concat_2d", dict(kind="concat"), None, [randn(3, 4), randn(3, 1)])
    save(HERE / "gan_layers.safetensors", tensors, {"cases": cases, "reference": "PyTorch %s, float64" % torch.__version__})
    return {c["name"]: c["torch_f32_error"] for c in cases}


def make_batchnorm_state():
    m = nn.BatchNorm2d(3)
    with torch.no_grad():
        m.weight.copy_(1 + randn(3, scale=0.3))
        m.bias.copy_(randn(3, scale=0.3))
    m = m.double().train()
    for _ in range(3):
        m(randn(2, 3, 4, 4, scale=2.0).double() + 0.5)
    m.eval()
    x = randn(2, 3, 4, 4)
    y = m(x.double())
    state = {k: (v.detach().to(torch.float32) if v.dtype.is_floating_point else v.detach()).contiguous()
             for k, v in m.state_dict().items()}
    state = {"bn." + k: v for k, v in state.items()}
    state["input"] = x
    state["output"] = y.detach().to(torch.float32)
    save_file(state, str(HERE / "batchnorm_state.safetensors"),
              metadata={"reference": "PyTorch %s BatchNorm2d(3) state_dict after 3 training passes" % torch.__version__})


# MARK: - GAN steps

def gan_step(netG, netD, real, noise, labels, dtype):
    """examples/dcgan main.py's iteration body (conditional when labels is given)."""
    G, D = copy.deepcopy(netG).to(dtype).train(), copy.deepcopy(netD).to(dtype).train()
    real = real.to(dtype)
    noise = noise.to(dtype)
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g = (lambda z: G(z, labels)) if labels is not None else G
    d = (lambda x: D(x, labels)) if labels is not None else D
    b = real.shape[0]
    D.zero_grad()
    label = torch.full((b,), 1.0, dtype=dtype)
    output = d(real).view(-1)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean().item()
    fake = g(noise)
    label.fill_(0.0)
    output = d(fake.detach()).view(-1)
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean().item()
    errD = errD_real + errD_fake
    grads = {"D." + k: p.grad.detach().clone() for k, p in D.named_parameters()}
    optD.step()
    G.zero_grad()
    label.fill_(1.0)
    output = d(fake).view(-1)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean().item()
    grads.update({"G." + k: p.grad.detach().clone() for k, p in G.named_parameters()})
    optG.step()
    after = {"G." + k: v.detach().clone() for k, v in G.state_dict().items()}
    after.update({"D." + k: v.detach().clone() for k, v in D.state_dict().items()})
    losses = {"Loss_D": errD.item(), "Loss_G": errG.item(), "D_x": D_x, "D_G_z1": D_G_z1, "D_G_z2": D_G_z2}
    return after, grads, losses, fake.detach()


def make_step(name, netG, netD, real, noise, labels, config):
    after, grads, losses, fake = gan_step(netG, netD, real, noise, labels, torch.float64)
    after32, grads32, losses32, fake32 = gan_step(netG, netD, real, noise, labels, torch.float32)
    tensors = {"real": real, "noise": noise, "fake": fake}
    if labels is not None:
        tensors["labels"] = labels.to(torch.float32)
    before = {"G." + k: v for k, v in netG.state_dict().items()}
    before.update({"D." + k: v for k, v in netD.state_dict().items()})
    tensors.update({"before." + k: v.to(torch.float32) for k, v in before.items()})
    tensors.update({"after." + k: v.to(torch.float32) for k, v in after.items()})
    tensors.update({"grad." + k: v for k, v in grads.items()})
    errors = {
        "losses": max(abs(losses32[k] - losses[k]) / abs(losses[k]) for k in losses),
        "gradients": max(rel_error(grads32[k], grads[k]) for k in grads),
        "updates": max(rel_error(after32[k].double() - before[k].double(), after[k] - before[k].double())
                       for k in after if after[k].dtype.is_floating_point and k in grads),
        "running_statistics": max(rel_error(after32[k], after[k]) for k in after if "running" in k),
        "fake": rel_error(fake32, fake),
    }
    save(HERE / f"{name}.safetensors", tensors, {
        "configuration": config, "losses": losses, "torch_f32_error": errors,
        "reference": "PyTorch examples/dcgan main.py iteration, PyTorch %s, float64" % torch.__version__})
    return losses, errors


def make_dcgan_step():
    side, nz, ngf, ndf, nc, batch = 16, 8, 8, 8, 1, 4
    torch.manual_seed(3)
    netG, netD = Generator(nz, ngf, nc, side), Discriminator(ndf, nc, side)
    netG.apply(lambda m: weights_init(m, GEN))
    netD.apply(lambda m: weights_init(m, GEN))
    real = uniform(batch, nc, side, side)
    noise = randn(batch, nz, 1, 1)
    config = {"imageSize": side, "channels": nc, "nz": nz, "ngf": ngf, "ndf": ndf, "batchSize": batch}
    return make_step("dcgan_step", netG, netD, real, noise, None, config)


def make_cgan_step():
    side, nz, ngf, ndf, nc, batch, classes, embed, label_channels = 16, 8, 8, 8, 2, 4, 3, 4, 1
    torch.manual_seed(4)
    netG = ConditionalGenerator(classes, embed, nz, ngf, nc, side)
    netD = ConditionalDiscriminator(classes, label_channels, ndf, nc, side)
    netG.apply(lambda m: weights_init(m, GEN))
    netD.apply(lambda m: weights_init(m, GEN))
    with torch.no_grad():
        netG.label_embedding.weight.copy_(randn(classes, embed))
        netD.label_embedding.weight.copy_(randn(classes, label_channels * side * side))
    real = uniform(batch, nc, side, side)
    noise = randn(batch, nz, 1, 1)
    labels = torch.tensor([2, 0, 1, 2], dtype=torch.long)
    config = {"imageSize": side, "channels": nc, "nz": nz, "ngf": ngf, "ndf": ndf, "batchSize": batch,
              "classes": classes, "embeddingDimension": embed, "labelChannels": label_channels}
    return make_step("cgan_step", netG, netD, real, noise, labels, config)


if __name__ == "__main__":
    summary = {"layers": make_layers()}
    make_batchnorm_state()
    summary["dcgan_step"] = make_dcgan_step()
    summary["cgan_step"] = make_cgan_step()
    print(json.dumps(summary, indent=1))
