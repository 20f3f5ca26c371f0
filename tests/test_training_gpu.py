"""GPU-only checks (skipped without CUDA): bf16 autocast does not hurt the loss, the compiled EM
step computes what the eager one does, updates and evaluation's forward passes captured as CUDA
graphs equal eager ones, and the
harness trains on CUDA with its defaults, with the opt-in bf16 + phase decoder and with CUDA
graphs (torch.compile is left to the step test: compiling the harness's train and validation
graphs took minutes under pytest on an H200)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from rnem_bench.models import build_model
from rnem_bench.training import checkpoint as ckpt
from rnem_bench.training.harness import sequence_loss, train
from rnem_bench.training.resolve import make_config
from rnem_bench.training.step import WARMUP, TrainStep, draw_inputs, make_optimizer

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


@pytest.mark.parametrize("bf16,phase", [(False, False), (True, False), (False, True)])
def test_captured_updates_equal_eager_ones(bf16, phase):
    """Warm-up, capture, replays: the same losses and weights as eager updates on the same draws.
    fp32 runs the same kernels (close to rounding); bf16 differs by autocast's cast cache, which a
    graph must do without (the bf16 test's 1% on the loss; Adam moves a weight ~lr per update)."""
    n = WARMUP + 5
    frames = [_batch() for _ in range(n)]
    runs = []
    for graph in (False, True):
        torch.manual_seed(0)
        model = build_model("rnem", 64).cuda()
        model.decoder.use_reference(not phase)  # the phase decoder (--phase-decoder) copies its taps before the capture
        step = TrainStep(model, make_optimizer(model.parameters(), 1e-3, torch.device("cuda")), bf16=bf16, graph=graph,
                         warn=pytest.fail)
        gen = torch.Generator("cuda").manual_seed(1)
        losses = torch.stack([step(draw_inputs(x, 5, 0.2, gen)) for x in frames]).cpu()
        runs.append((losses, [p.detach().clone() for p in model.parameters()], step))
    (eager, eager_w, _), (captured, captured_w, step) = runs
    assert step.captured and step.eager_updates == WARMUP  # the last updates were replays
    if bf16:
        torch.testing.assert_close(captured, eager, rtol=0.01, atol=0)
        for a, b in zip(captured_w, eager_w):
            torch.testing.assert_close(a, b, rtol=0, atol=2e-3 * n)
    else:
        torch.testing.assert_close(captured, eager, rtol=1e-5, atol=0)
        for a, b in zip(captured_w, eager_w):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_captured_inference_equals_eager():
    """Evaluation's predictions and rollouts replayed as CUDA graphs (after the warm-up) equal the
    eager ones on the same draws, to fp32 rounding; the last, smaller batch runs eagerly."""
    from rnem_bench.models import Inference

    torch.manual_seed(0)
    model = build_model("rnem", 64).cuda()
    batches = [_batch() for _ in range(WARMUP + 2)] + [_batch()[:3]]  # (8, 7, 64, 64), then (3, ...)
    eager, graphed = Inference(model, 5, 0.2), Inference(model, 5, 0.2, cuda_graph=True, warn=pytest.fail)
    for i, x in enumerate(batches):
        a, b = eager.predict(x, seed=i), graphed.predict(x, seed=i)
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(graphed.rollout(x, 3, 3, seed=i), eager.rollout(x, 3, 3, seed=i), rtol=1e-4, atol=1e-4)
    assert graphed._predict.captured and graphed._predict.replays == 2
    assert graphed._rollouts[(3, 3)].captured and graphed._rollouts[(3, 3)].replays == 2


def test_harness_trains_with_cuda_graphs_as_eager(tiny_balls, tmp_path, capsys):
    """--cuda-graph: the run captures its updates and validation batches (8 updates and 2
    validation batches an epoch, no fallback line), its losses match an eager run's, and resuming
    it eagerly is allowed."""
    config = make_config("rnem", str(tiny_balls), k=3, epochs=2, batch_size=8, steps=4, device="cuda",
                         progress=False, cuda_graph=True)
    assert config.cuda_graph
    assert train(config, tmp_path / "graph", progress=False)["updates"] > WARMUP
    assert "capture failed" not in capsys.readouterr().err
    train(dataclasses.replace(config, cuda_graph=False), tmp_path / "eager", progress=False)
    graph, eager = ckpt.read_log(tmp_path / "graph"), ckpt.read_log(tmp_path / "eager")
    for a, b in zip(graph, eager):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["valid_loss"] == pytest.approx(b["valid_loss"], rel=1e-4)
    done = train(dataclasses.replace(config, cuda_graph=False, epochs=3), tmp_path / "graph", resume=True, progress=False)
    assert done["epochs"] == 3


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
