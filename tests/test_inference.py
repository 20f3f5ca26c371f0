"""Evaluation's forward passes (rnem_bench/models/inference.py) through ``graphs.GraphedCall``:
the rollout, its noise now drawn before the loop so that the loop can be captured, equals the loop
it replaced bit for bit; on CPU a wanted capture fails once, with one line, and the predictions
stay those of the eager path; ``evaluate_run(cuda_graph=True)`` scores as eager off CUDA. The
captured path itself is tested on CUDA (tests/test_training_gpu.py)."""

from __future__ import annotations

import pytest
import torch

from rnem_bench.graphs import WARMUP, GraphedCall
from rnem_bench.models import Inference, build_model, predict, rollout
from rnem_bench.models.inference import SIM_THRESHOLD
from rnem_bench.models.nem import bitflip, e_step, init_gamma


def _frames(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, t, 32, 32, generator=g) > 0.9).to(torch.uint8)


@torch.no_grad()
def _old_rollout(model, features, k, n_observe, n_sim, seed, noise):
    """The rollout as written before the loop became capturable: noise drawn inside the loop."""
    model.eval()
    x = features.float()
    B, _, H, W = x.shape
    gen = torch.Generator().manual_seed(seed)
    state, psi, gamma = model.initial_state(init_gamma(B, model.resolve_k(k), H, gen))
    frame, out = x[:, 0], []
    for t in range(n_observe + n_sim):
        state, psi, _ = model.transition(bitflip(frame, noise, gen), state, psi, gamma, None)
        observed = t + 1 < n_observe
        target = x[:, t + 1] if observed else (psi.max(dim=1).values > SIM_THRESHOLD).float()
        gamma = e_step(psi, target)
        total = (gamma * psi).sum(dim=1)
        frame = x[:, t + 1] if observed else total
        if t >= n_observe:
            out.append(total.float())
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("name,noise", [("rnem", 0.2), ("rnem", 0.0), ("lstm", 0.2)])
def test_rollout_equals_the_loop_it_replaced(name, noise):
    torch.manual_seed(0)
    model = build_model(name, 32)
    x = _frames(3, 7)
    new = rollout(model, x, k=3, n_observe=3, n_sim=4, seed=5, noise=noise)
    assert torch.equal(new, _old_rollout(model, x, 3, 3, 4, 5, noise))


def test_a_wanted_capture_off_cuda_warns_once_and_predicts_as_eager():
    """``Inference(cuda_graph=True)`` on a CPU model is eager from the start (no warning: the graph
    is only wanted on CUDA); a ``GraphedCall`` forced on CPU fails its capture after the warm-up,
    says so in one line and goes on with the same outputs."""
    torch.manual_seed(0)
    model = build_model("rnem", 32)
    batches = [_frames(2, 5, seed) for seed in range(WARMUP + 2)]
    runner = Inference(model, 3, 0.2, cuda_graph=True, warn=pytest.fail)
    assert not runner.graph
    for i, x in enumerate(batches):
        out = runner.predict(x, seed=i)
        ref = predict(model, x, 3, 0.2, seed=i)
        assert out.keys() == ref.keys() and all(torch.equal(out[n], ref[n]) for n in out)
        assert torch.equal(runner.rollout(x, 3, 2, seed=i), rollout(model, x, 3, 3, 2, seed=i, noise=0.2))

    warnings: list[str] = []
    calls = []
    forced = GraphedCall(lambda a, b: calls.append(1) or {"sum": a + b}, True, "evaluation", warn=warnings.append)
    outs = [forced(torch.ones(2), torch.ones(2)) for _ in range(WARMUP + 3)]
    assert len(warnings) == 1 and "\n" not in warnings[0] and warnings[0].endswith("evaluation goes on eagerly")
    assert not forced.captured and not forced.enabled and forced.eager_calls == len(calls) == WARMUP + 3
    assert all(torch.equal(o["sum"], torch.full((2,), 2.0)) for o in outs)


def test_evaluate_run_with_cuda_graph_scores_as_eager_off_cuda(tmp_path):
    """Predictions and the simulation rollout (21 frames: 10 observed, 10 simulated) alike."""
    from conftest import tiny_balls_recipe
    from rnem_bench.data.generate import generate_dataset
    from rnem_bench.evaluation.run import evaluate_run
    from rnem_bench.training.harness import train
    from rnem_bench.training.resolve import make_config

    tiny_balls = generate_dataset(tiny_balls_recipe(image_size=32, steps=20), tmp_path / "d.zarr", workers=1, progress=False)
    config = make_config("rnem", str(tiny_balls), k=2, epochs=1, batch_size=8, steps=4, device="cpu", progress=False)
    train(config, tmp_path / "run", progress=False)
    eager = evaluate_run(tmp_path / "run", dataset=tiny_balls, batch_size=4)["metrics"]
    graphed = evaluate_run(tmp_path / "run", dataset=tiny_balls, batch_size=4, cuda_graph=True)["metrics"]
    assert eager["simulation_bce"] is not None and eager == graphed
