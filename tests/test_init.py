"""The original code's initialisation (TF-slim: glorot-uniform weights, zero biases, layer norms at
gain 1 and shift 0) is every reference model's default; PyTorch's defaults stay an option."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnem_bench.errors import RnemBenchError
from rnem_bench.models import MODELS, build_model
from rnem_bench.models.init import glorot_bound


def _uniform_ok(w: torch.Tensor, bound: float) -> None:
    """w looks like U(-bound, bound): inside the bound and, given enough draws to tell, reaching
    near it with std bound / sqrt(3)."""
    assert w.abs().max() <= bound * (1 + 1e-6)
    if w.numel() >= 1000:  # e.g. the 6 x 10 action embedding is too few draws to test the spread
        assert w.abs().max() >= 0.99 * bound
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def _fans(m: nn.Module) -> tuple[int, int]:
    w = m.weight
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


@pytest.mark.parametrize("name", list(MODELS))
def test_original_init_matches_the_formula_in_every_layer(name):
    torch.manual_seed(0)
    model = build_model(name, 32, n_actions=6) if name == "rnem" else build_model(name, 32)
    cell = model.cell
    joint = glorot_bound(cell.W.in_features + cell.R.in_features, cell.W.out_features)
    for module_name, m in model.named_modules():
        if m is cell.W or m is cell.R:  # one dense layer over [X; Upsilon] in the original
            _uniform_ok(m.weight, joint)
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            _uniform_ok(m.weight, glorot_bound(*_fans(m)))
        elif isinstance(m, nn.Embedding):
            _uniform_ok(m.weight, glorot_bound(*m.weight.shape))
        elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any(), module_name
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            assert not m.bias.any(), f"{module_name}: biases start at zero"


def test_pytorch_init_is_kept_as_an_option():
    torch.manual_seed(0)
    model = build_model("rnem", 32, init="pytorch")
    fc = model.decoder.fc[0]
    assert fc.bias.any()  # PyTorch draws biases U(+-1/sqrt(fan_in))
    assert fc.weight.abs().max() <= 1 / math.sqrt(fc.in_features) + 1e-6
    with pytest.raises(RnemBenchError, match="unknown init 'xavier'"):
        build_model("rnem", 32, init="xavier")


def test_a_run_config_without_init_is_a_run_that_started_from_pytorch_init():
    """config.json files written before the option existed keep loading as what they were."""
    from rnem_bench.training.config import RunConfig

    old = {"model": "rnem", "dataset": "d", "task": "mini-balls4", "k": 5, "noise": 0.2, "seed": 0,
           "image_size": 32, "steps": 20}
    assert RunConfig.from_dict(old).init == "pytorch"
    assert RunConfig.from_dict({**old, "init": "original"}).init == "original"
    assert RunConfig(**old).init == "original"  # new runs default to the original code's init
