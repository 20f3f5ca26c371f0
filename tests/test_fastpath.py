"""The fast training path computes the same function: the phase-decomposed x2 decoder
convolution against resize-then-convolve, checkpoints of the earlier code, bf16 on native CPUs."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from rnem_bench.models import build_model, predict
from rnem_bench.models.convnets import ConvNetConfig, Decoder, ResizeConv, phase_conv_x2
from rnem_bench.models.fastpath import native_bf16


def reference_resize_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Nearest resize x2, then 4x4 TensorFlow-"SAME" convolution (pad 1 before, 2 after)."""
    n = x.shape[-1]
    up = F.interpolate(x, size=(2 * n, 2 * n), mode="nearest")
    return F.conv2d(F.pad(up, (1, 2, 1, 2)), weight, bias)


@pytest.mark.parametrize("c_in,c_out,n", [(64, 32, 8), (32, 16, 16), (16, 1, 32), (32, 16, 21), (3, 2, 1)])
def test_phase_conv_equals_resize_conv_forward_and_gradients(c_in, c_out, n):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(3, c_in, n, n, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, c_in, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c_out, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(3, c_out, 2 * n, 2 * n, generator=g, dtype=torch.float64)
    outs, grads = [], []
    for f in (reference_resize_conv, phase_conv_x2):
        y = f(x, w, b)
        outs.append(y)
        grads.append(torch.autograd.grad((y * upstream).sum(), (x, w, b)))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    for fast, ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size,phased", [(32, [False, True, True]), (64, [True, True, True]),
                                         (84, [False, False, True, True])])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_decoder_fast_equals_reference_per_layout(size, phased, dtype, tol):
    """Every x2 layer of each layout runs phase-decomposed (84: only 21 -> 42 -> 84); the whole
    decoder's output and parameter gradients match the reference form: to float64 rounding
    (the same function) and to fp32 tolerance. Gradients are compared relative to the sum of
    absolute contributions of their pixels, which is what rounding scales with."""
    torch.manual_seed(0)
    dec = Decoder(ConvNetConfig.for_image(size), hidden=20).to(dtype)
    assert [m.phase for m in dec.modules() if isinstance(m, ResizeConv)] == phased
    h = torch.randn(4, 20, dtype=dtype)
    upstream = torch.linspace(-1, 1, size * size, dtype=dtype).view(1, 1, size, size)
    results = []
    for reference in (True, False):
        dec.use_reference(reference)
        dec.zero_grad()
        psi = dec(h)
        (psi.to(dtype) * upstream).sum().backward()
        results.append((psi.detach(), {n: p.grad.clone() for n, p in dec.named_parameters()}))
    (ref_out, ref_grads), (fast_out, fast_grads) = results
    assert fast_out.shape == (4, 1, size, size)
    assert (fast_out - ref_out).abs().max().item() <= tol
    dec.zero_grad()
    (dec(h).to(dtype) * upstream.abs()).sum().backward()   # sum of |contributions|, roughly
    for name, grad in ref_grads.items():
        scale = max(dict(dec.named_parameters())[name].grad.abs().max().item(), grad.abs().max().item())
        assert (fast_grads[name] - grad).abs().max().item() <= tol * scale, name


# state_dict key:shape signatures of the models before the fast path (commit 5b7949e)
PRE_FASTPATH_SIGNATURES = {
    ("rnem", 32): "18920c8e977ffc0a", ("rnem", 64): "78a863057d60e902", ("rnem", 84): "56df0f497c91250f",
    ("lstm", 64): "6c3b49344622bfc7", ("rnn-em", 84): "cf52b93aacbf8840", ("rnem-noatt", 32): "0f56f87e8530e59c",
}
# predict() of build_model("rnem", size) after torch.manual_seed(0), computed by the code before the
# fast path (see test below): sum of psi, sum of gamma^2
PRE_FASTPATH_PREDICTIONS = {
    32: (12543.123881280422, 2730.9867509275714),
    64: (39720.900989905, 10923.666952300868),
    84: (113143.97743749619, 18828.293636382874),
}


@pytest.mark.parametrize("name,size", sorted(PRE_FASTPATH_SIGNATURES))
def test_checkpoints_of_the_earlier_code_still_fit(name, size):
    model = build_model(name, size, **({"n_actions": 6} if size == 84 else {}))
    signature = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    assert hashlib.sha256(signature.encode()).hexdigest()[:16] == PRE_FASTPATH_SIGNATURES[(name, size)]


@pytest.mark.parametrize("size", sorted(PRE_FASTPATH_PREDICTIONS))
def test_same_weights_predict_what_the_earlier_code_predicted(size):
    torch.manual_seed(0)  # the same weights as then: the earlier code started from PyTorch's init
    model = build_model("rnem", size, init="pytorch", **({"n_actions": 6} if size == 84 else {}))
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(2, 5, size, size, generator=g) > 0.8).to(torch.uint8)
    actions = torch.zeros(2, 5, dtype=torch.long) if size == 84 else None
    out = predict(model, x, k=3, noise=0.1, actions=actions, seed=3)
    psi_sum, gamma_sq = PRE_FASTPATH_PREDICTIONS[size]
    assert out["psi"].double().sum().item() == pytest.approx(psi_sum, rel=1e-6)
    assert out["gamma"].double().pow(2).sum().item() == pytest.approx(gamma_sq, rel=1e-6)


def test_bf16_prediction_stays_close_to_fp32():
    torch.manual_seed(0)
    model = build_model("rnem", 32)
    x = (torch.rand(2, 4, 32, 32, generator=torch.Generator().manual_seed(1)) > 0.8).to(torch.uint8)
    fp32 = predict(model, x, k=3, noise=0.0, seed=0)
    bf16 = predict(model, x, k=3, noise=0.0, seed=0, bf16=True)
    assert bf16["psi"].dtype == torch.float32  # the decoder's sigmoid, the E-step and the loss run in fp32
    assert (bf16["psi"] - fp32["psi"]).abs().max() < 0.05
    assert (bf16["gamma"] - fp32["gamma"]).abs().mean() < 0.02


def test_bf16_default_follows_the_hardware(tmp_path):
    """make_config turns bf16 on exactly where it is native (here: the CPU's AVX512_BF16/AMX)."""
    from rnem_bench.data.generate import generate_dataset
    from rnem_bench.recipes import Recipe
    from rnem_bench.training.resolve import make_config

    recipe = Recipe("balls", {"n_balls": [2, 2], "image_size": 16, "steps": 3}, seed=0, splits={"train": 4, "valid": 2})
    path = generate_dataset(recipe, tmp_path / "d.zarr", workers=1, progress=False)
    config = make_config("rnem", str(path), "tiny", device="cpu", progress=False)
    assert config.bf16 == native_bf16("cpu")
    assert not config.compile and not config.reference_decoder
    assert not make_config("rnem", str(path), "tiny", device="cpu", bf16=False, progress=False).bf16


def test_cuda_defaults_to_the_path_measured_faster_there():
    """On an H200 eager fp32 with the resize decoder beat bf16 + phase + compile (fastpath's
    docstring); the CPU keeps the fast path. Needs no GPU: only the flags are resolved."""
    from rnem_bench.models.fastpath import SpeedDefaults, speed_defaults

    assert speed_defaults("cuda") == SpeedDefaults(bf16=False, compile=False, reference_decoder=True)
    assert speed_defaults("cuda:1") == speed_defaults("cuda")
    assert speed_defaults("cpu") == SpeedDefaults(bf16=native_bf16("cpu"), compile=False, reference_decoder=False)


def test_reference_decoder_flag_reaches_the_trained_model(tmp_path):
    from rnem_bench.data.generate import generate_dataset
    from rnem_bench.recipes import Recipe
    from rnem_bench.training.harness import Trainer
    from rnem_bench.training.resolve import make_config

    recipe = Recipe("balls", {"n_balls": [2, 2], "image_size": 16, "steps": 3}, seed=0, splits={"train": 4, "valid": 2})
    path = generate_dataset(recipe, tmp_path / "d.zarr", workers=1, progress=False)
    for reference in (False, True):
        config = make_config("rnem", str(path), "tiny", device="cpu", progress=False, reference_decoder=reference)
        convs = [m for m in Trainer(config, tmp_path / "run", progress=False).net.modules() if isinstance(m, ResizeConv)]
        assert [m.reference for m in convs] == [reference] * len(convs)
