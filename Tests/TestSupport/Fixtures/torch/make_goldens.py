#!/usr/bin/env python3
"""Golden fixtures for MR2CT's neural-network engine, computed with PyTorch (2.x).

    cd Tests/TestSupport/Fixtures/torch && python3 make_goldens.py

Every reference value is computed by PyTorch in float64 from float32 inputs and weights (so the reference has no
float32 rounding of its own) and stored rounded to F32. For each case the script also runs PyTorch in float32 and
records its error against the float64 reference in the metadata ("torch_f32_error": max |a - b| / max |b| over
the case's tensors): the tolerance MR2CT is held to (1e-4 relative to a tensor's largest magnitude) is then
compared with what PyTorch's own float32 achieves.

Backward passes use a random upstream gradient G: the scalar differentiated is sum(output * G), so that every
output element's gradient matters (not just their sum).

Files (all safetensors, metadata = JSON strings):
  layers.safetensors              per case "<case>.<field>": input, output, grad_output, grad_input, weight, bias,
                                  grad_weight, grad_bias (and BatchNorm running statistics before/after);
                                  metadata "cases" describes each case's layer and hyper-parameters.
  losses.safetensors              MSE, L1, BCEWithLogits (mean): input, target, output (scalar), grad_input.
  generator_weights.safetensors   a ResnetGenerator(1, 1, ngf 8, 2 blocks) state dict, written by
                                  Pipelines/convert_pytorch_generator.py from a torch.save()d .pth (the
                                  PyTorch -> MR2CT interop path), with MR2CT's __metadata__.
  generator_io.safetensors        input (2x1x32x32), output, grad_output, grad_input, "grad.<state_dict key>".
  discriminator_weights.safetensors, discriminator_io.safetensors
                                  NLayerDiscriminator(1, ndf 8, n_layers 3) the same way.
  adam.safetensors                three parameters through 3 Adam steps (betas 0.5/0.999, eps 1e-8, lr 2e-4,
                                  2e-4, then 1e-4): gradients given per step, values after each step, final moments.
  cyclegan_step.safetensors       one CycleGAN iteration (cycle_gan_model.optimize_parameters: LSGAN, lambda 10,
                                  identity 0.5, fresh image pools): weights before ("before.G_A.model.1.weight"),
                                  the parameter gradients of the step ("grad.G_A..."), weights after ("after...."),
                                  real_A, real_B and the generated images; metadata "losses".
  cyclegan_step_batch2.safetensors the same on a batch of 2 images per domain (made alone, with its own seed:
                                  python3 make_goldens.py --only cyclegan_step_batch2).
"""
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT / "Pipelines"))
from pytorch_reference_networks import ImagePool, NLayerDiscriminator, ResnetGenerator, init_weights  # noqa: E402
from convert_pytorch_generator import convert  # noqa: E402

torch.use_deterministic_algorithms(True)
GEN = torch.Generator().manual_seed(20261127)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape, generator=GEN, dtype=torch.float64) * scale).to(torch.float32)


def uniform(*shape, low=-1.0, high=1.0):
    return (torch.rand(*shape, generator=GEN, dtype=torch.float64) * (high - low) + low).to(torch.float32)


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def rel_error(a, b):
    """max |a - b| / max |b| (0 when both are 0): the measure the Swift tests use."""
    a, b = a.detach().double(), b.detach().double()
    scale = b.abs().max().item() if b.numel() else 0.0
    diff = (a - b).abs().max().item() if b.numel() else 0.0
    return diff / scale if scale > 0 else diff


def save(path, tensors, metadata):
    save_file({k: f32(v) for k, v in tensors.items()}, str(path), metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})


# MARK: - Layers

def layer_case(name, module, x, describe, train=True, extra_state=None):
    """Runs `module` on `x` in float64 (reference) and float32 (to measure PyTorch's own float32 error)."""
    out = {}
    results = {}
    for dtype in (torch.float64, torch.float32):
        m = copy.deepcopy(module).to(dtype)
        m.train(train)
        xi = x.to(dtype).clone().requires_grad_(True)
        y = m(xi)
        if dtype == torch.float64:
            grad_output = randn(*y.shape)
        (y * grad_output.to(dtype)).sum().backward()
        r = {"output": y, "grad_input": xi.grad}
        for pname, p in m.named_parameters():
            r[pname] = p.detach().clone()
            r["grad_" + pname] = p.grad
        for bname, b in m.named_buffers():
            if b.dtype.is_floating_point:
                r[bname] = b.detach().clone()
        results[dtype] = r
    ref, single = results[torch.float64], results[torch.float32]
    out[f"{name}.input"] = x
    out[f"{name}.grad_output"] = grad_output
    for pname, p in module.named_parameters():  # the float32 values given to the layer
        out[f"{name}.{pname}"] = p.detach()
    for bname, b in module.named_buffers():
        if b.dtype.is_floating_point:
            out[f"{name}.{bname}_before"] = b.detach()
    for key, value in ref.items():
        if key in dict(module.named_parameters()):
            continue
        if key.startswith("running_"):
            out[f"{name}.{key}"] = value  # running statistics after the forward pass
        else:
            out[f"{name}.{key}"] = value
    error = max(rel_error(single[k], ref[k]) for k in ref if k not in dict(module.named_parameters()))
    describe = dict(describe, name=name, train=train, torch_f32_error=error)
    return out, describe


def make_layers():
    tensors, cases = {}, []

    def add(result):
        t, d = result
        tensors.update(t)
        cases.append(d)

    def conv(name, cin, cout, k, s, p, bias, shape):
        m = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=bias)
        with torch.no_grad():
            m.weight.copy_(randn(*m.weight.shape, scale=0.3))
            if bias:
                m.bias.copy_(randn(cout, scale=0.3))
        add(layer_case(name, m, randn(*shape), dict(kind="conv2d", inputChannels=cin, outputChannels=cout,
                                                    kernelSize=k, stride=s, padding=p, bias=bias)))

    conv("conv_k3_s1_p1", 3, 4, 3, 1, 1, True, (2, 3, 7, 6))
    conv("conv_k4_s2_p1_nobias", 2, 3, 4, 2, 1, False, (1, 2, 9, 8))
    conv("conv_k7_s1_p0", 2, 3, 7, 1, 0, True, (1, 2, 10, 11))
    conv("conv_k3_s2_p1", 3, 5, 3, 2, 1, True, (2, 3, 8, 8))
    conv("conv_k4_s1_p1", 4, 1, 4, 1, 1, True, (2, 4, 5, 5))

    for pad, shape in ((1, (2, 3, 4, 5)), (3, (1, 2, 6, 7))):
        add(layer_case(f"reflectionpad{pad}", nn.ReflectionPad2d(pad), randn(*shape),
                       dict(kind="reflectionpad2d", padding=pad)))

    def convt(name, cin, cout, k, s, p, op, bias, shape):
        m = nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, output_padding=op, bias=bias)
        with torch.no_grad():
            m.weight.copy_(randn(*m.weight.shape, scale=0.3))
            if bias:
                m.bias.copy_(randn(cout, scale=0.3))
        add(layer_case(name, m, randn(*shape), dict(kind="convtranspose2d", inputChannels=cin, outputChannels=cout,
                                                    kernelSize=k, stride=s, padding=p, outputPadding=op, bias=bias)))

    convt("convT_k3_s2_p1_op1", 4, 3, 3, 2, 1, 1, True, (2, 4, 5, 4))
    convt("convT_k4_s2_p1_op0_nobias", 3, 2, 4, 2, 1, 0, False, (1, 3, 4, 5))
    convt("convT_k3_s1_p0", 2, 3, 3, 1, 0, 0, True, (1, 2, 4, 4))

    add(layer_case("instancenorm", nn.InstanceNorm2d(3, affine=False, track_running_stats=False),
                   randn(2, 3, 6, 5, scale=2.0) + 0.5, dict(kind="instancenorm2d", channels=3, affine=False, eps=1e-5)))
    m = nn.InstanceNorm2d(3, affine=True, track_running_stats=False)
    with torch.no_grad():
        m.weight.copy_(1 + randn(3, scale=0.3))
        m.bias.copy_(randn(3, scale=0.3))
    add(layer_case("instancenorm_affine", m, randn(2, 3, 6, 5, scale=2.0) - 1.0,
                   dict(kind="instancenorm2d", channels=3, affine=True, eps=1e-5)))

    for train in (True, False):
        m = nn.BatchNorm2d(3, eps=1e-5, momentum=0.1)
        with torch.no_grad():
            m.weight.copy_(1 + randn(3, scale=0.3))
            m.bias.copy_(randn(3, scale=0.3))
            m.running_mean.copy_(randn(3, scale=0.5))
            m.running_var.copy_(uniform(3, low=0.5, high=2.0))
        add(layer_case("batchnorm_" + ("train" if train else "eval"), m, randn(2, 3, 5, 4, scale=1.5) + 0.7,
                       dict(kind="batchnorm2d", channels=3, eps=1e-5, momentum=0.1, affine=True), train=train))

    def nonzero(*shape):
        x = randn(*shape, scale=2.0)
        return torch.where(x.abs() < 1e-3, torch.full_like(x, 0.5), x)  # keep away from ReLU kinks

    add(layer_case("relu", nn.ReLU(), nonzero(2, 3, 4, 5), dict(kind="relu")))
    add(layer_case("leakyrelu", nn.LeakyReLU(0.2), nonzero(2, 3, 4, 5), dict(kind="leakyrelu", slope=0.2)))
    add(layer_case("tanh", nn.Tanh(), nonzero(2, 3, 4, 5), dict(kind="tanh")))
    add(layer_case("sigmoid", nn.Sigmoid(), nonzero(2, 3, 4, 5), dict(kind="sigmoid")))
    add(layer_case("dropout_eval", nn.Dropout(0.5), nonzero(2, 3, 4, 5), dict(kind="dropout", p=0.5), train=False))

    save(HERE / "layers.safetensors", tensors, {"cases": cases, "reference": "PyTorch %s, float64" % torch.__version__})
    return cases


def make_losses():
    tensors, cases = {}, []
    shape = (2, 1, 4, 4)
    for name, fn, target in (
        ("mse", nn.MSELoss(), randn(*shape)),
        ("mse_target_one", nn.MSELoss(), torch.ones(shape)),
        ("l1", nn.L1Loss(), randn(*shape)),
        ("bce_with_logits", nn.BCEWithLogitsLoss(), (uniform(*shape) > 0).to(torch.float32)),
        ("bce_with_logits_soft", nn.BCEWithLogitsLoss(), uniform(*shape, low=0.0, high=1.0)),
    ):
        x = randn(*shape, scale=3.0)
        results = {}
        for dtype in (torch.float64, torch.float32):
            xi = x.to(dtype).clone().requires_grad_(True)
            loss = fn(xi, target.to(dtype))
            loss.backward()
            results[dtype] = (loss.detach(), xi.grad)
        (l64, g64), (l32, g32) = results[torch.float64], results[torch.float32]
        tensors.update({f"{name}.input": x, f"{name}.target": target, f"{name}.output": l64.reshape(()),
                        f"{name}.grad_input": g64})
        cases.append(dict(name=name, kind=name.split("_target")[0].replace("_soft", ""), reduction="mean",
                          torch_f32_error=max(rel_error(l32, l64), rel_error(g32, g64))))
    save(HERE / "losses.safetensors", tensors, {"cases": cases, "reference": "PyTorch %s, float64" % torch.__version__})
    return cases


# MARK: - Networks

def zero_gradient_names(named_grads):
    """Parameters whose exact gradient is 0: biases directly followed by InstanceNorm (the norm removes any
    per-channel constant). Their float32 gradient is rounding noise; the tests check it is small, not its value."""
    scale = max(g.abs().max().item() for g in named_grads.values())
    return sorted(k for k, g in named_grads.items() if g.abs().max().item() <= 1e-12 * scale)


def network_io(net, x, prefix):
    results = {}
    for dtype in (torch.float64, torch.float32):
        m = copy.deepcopy(net).to(dtype)
        m.train(True)
        xi = x.to(dtype).clone().requires_grad_(True)
        y = m(xi)
        if dtype == torch.float64:
            grad_output = randn(*y.shape)
        (y * grad_output.to(dtype)).sum().backward()
        r = {"output": y, "grad_input": xi.grad}
        r.update({"grad." + k: p.grad for k, p in m.named_parameters()})
        results[dtype] = r
    ref, single = results[torch.float64], results[torch.float32]
    tensors = {"input": x, "grad_output": grad_output}
    tensors.update(ref)
    errors = {k: rel_error(single[k], ref[k]) for k in ref}
    zero = zero_gradient_names({k: v for k, v in ref.items() if k.startswith("grad.")})
    return tensors, {"torch_f32_error": max(v for k, v in errors.items() if k not in zero),
                     "zero_gradients": zero}


def make_generator():
    config = {"inputChannels": 1, "outputChannels": 1, "ngf": 8, "residualBlocks": 2, "dropout": False}
    torch.manual_seed(1)
    net = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    init_weights(net, random_biases=True, generator=GEN)
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "latest_net_G_A.pth")
        torch.save(net.state_dict(), pth)
        converted, _ = convert(pth, str(HERE / "generator_weights.safetensors"))
    assert converted == config, converted
    x = uniform(2, 1, 32, 32)
    tensors, info = network_io(net, x, "generator")
    save(HERE / "generator_io.safetensors", tensors, dict(info, generator=config, reference="PyTorch %s, float64" % torch.__version__))
    return info


def make_discriminator():
    config = {"inputChannels": 1, "ndf": 8, "layers": 3}
    net = NLayerDiscriminator(1, ndf=8, n_layers=3)
    init_weights(net, random_biases=True, generator=GEN)
    save_file({k: f32(v) for k, v in net.state_dict().items()}, str(HERE / "discriminator_weights.safetensors"),
              metadata={"discriminator": json.dumps(config)})
    x = uniform(2, 1, 32, 32)
    tensors, info = network_io(net, x, "discriminator")
    save(HERE / "discriminator_io.safetensors", tensors, dict(info, discriminator=config, reference="PyTorch %s, float64" % torch.__version__))
    return info


# MARK: - Adam

def make_adam():
    shapes = {"conv.weight": (4, 3, 3, 3), "conv.bias": (4,), "small": (2, 5)}
    initial = {k: randn(*s, scale=0.05) for k, s in shapes.items()}
    grads = [{k: randn(*s, scale=0.01) for k, s in shapes.items()} for _ in range(3)]
    for step in grads:  # gradients at the scale of Adam's eps, and exact zeros
        step["small"][0] = torch.tensor([0.0, 1e-10, -1e-9, 1e-8, -3e-8])
    lrs = [2e-4, 2e-4, 1e-4]
    results = {}
    for dtype in (torch.float64, torch.float32):
        params = {k: v.to(dtype).clone().requires_grad_(True) for k, v in initial.items()}
        opt = torch.optim.Adam(list(params.values()), lr=lrs[0], betas=(0.5, 0.999), eps=1e-8)
        after = []
        for step, lr in enumerate(lrs):
            for group in opt.param_groups:
                group["lr"] = lr
            for k, p in params.items():
                p.grad = grads[step][k].to(dtype).clone()
            opt.step()
            after.append({k: p.detach().clone() for k, p in params.items()})
        state = {k: opt.state[p] for k, p in params.items()}
        results[dtype] = (after, state)
    after, state = results[torch.float64]
    tensors = {}
    for k in shapes:
        tensors[f"{k}.initial"] = initial[k]
        for i in range(3):
            tensors[f"{k}.grad.{i + 1}"] = grads[i][k]
            tensors[f"{k}.after.{i + 1}"] = after[i][k]
        tensors[f"{k}.exp_avg"] = state[k]["exp_avg"]
        tensors[f"{k}.exp_avg_sq"] = state[k]["exp_avg_sq"]
    after32, _ = results[torch.float32]
    error = max(rel_error(after32[i][k] - initial[k].double(), after[i][k] - initial[k].double())
                for i in range(3) for k in shapes)
    save(HERE / "adam.safetensors", tensors, {
        "parameters": list(shapes), "learning_rates": lrs, "beta1": 0.5, "beta2": 0.999, "eps": 1e-8, "steps": 3,
        "torch_f32_update_error": error, "reference": "torch.optim.Adam, PyTorch %s, float64" % torch.__version__})
    return error


# MARK: - One CycleGAN iteration

def make_cyclegan_step(batch=1, name="cyclegan_step"):
    gconf = {"inputChannels": 1, "outputChannels": 1, "ngf": 4, "residualBlocks": 2, "dropout": False}
    dconf = {"inputChannels": 1, "ndf": 4, "layers": 3}
    nets = {"G_A": ResnetGenerator(1, 1, ngf=4, n_blocks=2), "G_B": ResnetGenerator(1, 1, ngf=4, n_blocks=2),
            "D_A": NLayerDiscriminator(1, ndf=4, n_layers=3), "D_B": NLayerDiscriminator(1, ndf=4, n_layers=3)}
    for net in nets.values():
        init_weights(net, random_biases=True, generator=GEN)
    real_A, real_B = uniform(batch, 1, 32, 32), uniform(batch, 1, 32, 32)
    lambda_A = lambda_B = 10.0
    lambda_idt = 0.5

    def iteration(dtype):
        n = {k: copy.deepcopy(v).to(dtype).train() for k, v in nets.items()}
        A, B = real_A.to(dtype), real_B.to(dtype)
        opt_G = torch.optim.Adam(list(n["G_A"].parameters()) + list(n["G_B"].parameters()), lr=2e-4, betas=(0.5, 0.999))
        opt_D = torch.optim.Adam(list(n["D_A"].parameters()) + list(n["D_B"].parameters()), lr=2e-4, betas=(0.5, 0.999))
        pool_A, pool_B = ImagePool(50), ImagePool(50)
        mse, l1 = nn.MSELoss(), nn.L1Loss()

        def gan(pred, is_real):  # GANLoss('lsgan')
            return mse(pred, torch.ones_like(pred) if is_real else torch.zeros_like(pred))

        # forward()
        fake_B = n["G_A"](A)
        rec_A = n["G_B"](fake_B)
        fake_A = n["G_B"](B)
        rec_B = n["G_A"](fake_A)
        # G_A and G_B
        for d in ("D_A", "D_B"):
            for p in n[d].parameters():
                p.requires_grad = False
        opt_G.zero_grad()
        idt_A = n["G_A"](B)
        loss_idt_A = l1(idt_A, B) * lambda_B * lambda_idt
        idt_B = n["G_B"](A)
        loss_idt_B = l1(idt_B, A) * lambda_A * lambda_idt
        loss_G_A = gan(n["D_A"](fake_B), True)
        loss_G_B = gan(n["D_B"](fake_A), True)
        loss_cycle_A = l1(rec_A, A) * lambda_A
        loss_cycle_B = l1(rec_B, B) * lambda_B
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        grads = {f"{g}.{k}": p.grad.detach().clone() for g in ("G_A", "G_B") for k, p in n[g].named_parameters()}
        opt_G.step()
        # D_A and D_B
        for d in ("D_A", "D_B"):
            for p in n[d].parameters():
                p.requires_grad = True
        opt_D.zero_grad()

        def backward_D_basic(netD, real, fake):
            loss_D_real = gan(netD(real), True)
            loss_D_fake = gan(netD(fake.detach()), False)
            loss_D = (loss_D_real + loss_D_fake) * 0.5
            loss_D.backward()
            return loss_D

        loss_D_A = backward_D_basic(n["D_A"], B, pool_B.query(fake_B))
        loss_D_B = backward_D_basic(n["D_B"], A, pool_A.query(fake_A))
        grads.update({f"{d}.{k}": p.grad.detach().clone() for d in ("D_A", "D_B") for k, p in n[d].named_parameters()})
        opt_D.step()
        after = {f"{g}.{k}": p.detach().clone() for g in n for k, p in n[g].named_parameters()}
        losses = {"dA": loss_D_A, "gA": loss_G_A, "cycleA": loss_cycle_A, "idtA": loss_idt_A,
                  "dB": loss_D_B, "gB": loss_G_B, "cycleB": loss_cycle_B, "idtB": loss_idt_B}
        images = {"fake_B": fake_B, "rec_A": rec_A, "fake_A": fake_A, "rec_B": rec_B, "idt_A": idt_A, "idt_B": idt_B}
        return after, grads, {k: v.item() for k, v in losses.items()}, {k: v.detach() for k, v in images.items()}

    after, grads, losses, images = iteration(torch.float64)
    after32, grads32, losses32, images32 = iteration(torch.float32)
    tensors = {"real_A": real_A, "real_B": real_B}
    tensors.update({f"before.{g}.{k}": p.detach() for g, net in nets.items() for k, p in net.named_parameters()})
    tensors.update({f"after.{k}": v for k, v in after.items()})
    tensors.update({f"grad.{k}": v for k, v in grads.items()})
    tensors.update(images)
    zero = zero_gradient_names(grads)
    before = {f"{g}.{k}": p.detach().double() for g, net in nets.items() for k, p in net.named_parameters()}
    errors = {
        "losses": max(abs(losses32[k] - losses[k]) / abs(losses[k]) for k in losses),
        "weights_after": max(rel_error(after32[k], after[k]) for k in after),
        "updates_excluding_zero_gradients": max(rel_error(after32[k] - before[k], after[k] - before[k])
                                                for k in after if k not in zero),
        "gradients": max(rel_error(grads32[k], grads[k]) for k in grads if k not in zero),
        "images": max(rel_error(images32[k], images[k]) for k in images),
    }
    save(HERE / f"{name}.safetensors", tensors, {
        "generator": gconf, "discriminator": dconf,
        "cyclegan": {"ganLoss": "lsgan", "lambdaA": lambda_A, "lambdaB": lambda_B, "lambdaIdentity": lambda_idt,
                     "poolSize": 50, "learningRate": 2e-4, "beta1": 0.5},
        "losses": losses, "zero_gradients": zero, "torch_f32_error": errors,
        "reference": "pytorch-CycleGAN-and-pix2pix cycle_gan_model.optimize_parameters, PyTorch %s, float64" % torch.__version__})
    return losses, errors


if __name__ == "__main__":
    if sys.argv[1:] == ["--only", "cyclegan_step_batch2"]:
        # Issue 21: the same iteration on a batch of 2 (InstanceNorm per image, mean losses, ImagePool.query per
        # image), from its own seed so that the other fixtures are not regenerated.
        GEN.manual_seed(20261201)
        print(json.dumps(make_cyclegan_step(batch=2, name="cyclegan_step_batch2"), indent=1))
        sys.exit(0)
    summary = {
        "layers": {c["name"]: c["torch_f32_error"] for c in make_layers()},
        "losses": {c["name"]: c["torch_f32_error"] for c in make_losses()},
        "generator": make_generator(),
        "discriminator": make_discriminator(),
        "adam_update_error": make_adam(),
        "cyclegan_step": make_cyclegan_step(),
    }
    print(json.dumps(summary, indent=1))
    total = sum(p.stat().st_size for p in HERE.glob("*.safetensors"))
    print(f"fixtures: {total / 1e6:.2f} MB")
