"""GPU-only checks (skipped without CUDA): bf16 autocast does not hurt the loss, the compiled EM
step computes what the eager one does, and the harness trains on CUDA with its defaults and with
the opt-in bf16 + phase decoder (torch.compile is left to the step test: compiling the harness's
train and validation graphs took minutes under pytest on an H200)."""

from __future__ import annotations

import pytest
import torch

from rnem_bench.models import build_model
from rnem_bench.training import checkpoint as ckpt
from rnem_bench.training.harness import sequence_loss, train
from rnem_bench.training.resolve import make_config

pytestmark = pytest.mark.gpu


def _batch(device: str = "cuda") -> torch.Tensor:
    g = torch.Generator(device).manual_seed(0)
    return (torch.rand(8, 7, 64, 64, generator=g, device=device) > 0.9).to(torch.uint8)


@pytest.mark.parametrize("name", ["rnem", "lstm"])
def test_bf16_loss_matches_fp32(name):
    torch.manual_seed(0)
    model = build_model(name, 64).cuda()
    x = _batch()
    fp32 = sequence_loss(model, x, 5, 0.2, torch.Generator("cuda").manual_seed(1))
    bf16 = sequence_loss(model, x, 5, 0.2, torch.Generator("cuda").manual_seed(1), bf16=True)
    assert bf16.dtype == torch.float32
    assert abs(bf16.item() - fp32.item()) < 0.01 * fp32.item()


def test_compiled_step_matches_eager():
    torch.manual_seed(0)
    model = build_model("rnem", 64).cuda()
    x = _batch()
    eager = sequence_loss(model, x, 5, 0.2, torch.Generator("cuda").manual_seed(1))
    model.compile_step(dynamic=False)
    compiled = sequence_loss(model, x, 5, 0.2, torch.Generator("cuda").manual_seed(1))
    compiled.backward()
    assert compiled.item() == pytest.approx(eager.item(), rel=1e-3)


@pytest.mark.parametrize("fast", [False, True])
def test_harness_trains_on_cuda(tiny_balls, tmp_path, fast):
    opt_in = dict(bf16=True, reference_decoder=False) if fast else {}
    config = make_config("rnem", str(tiny_balls), k=3, epochs=2, batch_size=8, steps=4, device="cuda",
                         progress=False, **opt_in)
    assert config.bf16 == fast and config.reference_decoder != fast and not config.compile
    summary = train(config, tmp_path / "run", progress=False)
    assert summary["epochs"] == 2
    log = ckpt.read_log(tmp_path / "run")
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in log)
    model, _ = ckpt.load_run(tmp_path / "run", device="cuda")
    assert next(model.parameters()).is_cuda
