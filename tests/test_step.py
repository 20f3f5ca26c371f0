"""The training update (rnem_bench/training/step.py): the harness runs every update through the
one function a CUDA graph captures, and on CPU it equals the eager loop it replaced, bit for bit;
a capture that fails leaves the run eager with a one-line warning; optimizer states move between
CUDA's capturable Adam and the CPU's. The captured path itself is tested on CUDA
(tests/test_training_gpu.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import tiny_balls_recipe
from rnem_bench.models import build_model
from rnem_bench.training import step as step_module
from rnem_bench.training.harness import Trainer, _seed, sequence_loss
from rnem_bench.training.resolve import make_config
from rnem_bench.training.step import WARMUP, TrainStep, draw_inputs, make_optimizer, match_capturable


@pytest.fixture(scope="module")
def tiny32(tmp_path_factory) -> Path:
    from rnem_bench.data.generate import generate_dataset

    recipe = tiny_balls_recipe(image_size=32)
    return generate_dataset(recipe, tmp_path_factory.mktemp("data32") / "tiny32.zarr", workers=1, progress=False)


def _frames(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(4, 5, 32, 32, generator=g) > 0.9).to(torch.uint8) for _ in range(n)]


def _old_loop(model, optimizer, frames, gen) -> list[torch.Tensor]:
    """The harness's update before step.py: sequence_loss, zero_grad, backward, step."""
    losses = []
    for x in frames:
        loss = sequence_loss(model, x, 3, 0.2, gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses


def _step_loop(step: TrainStep, frames, gen) -> list[torch.Tensor]:
    return [step(draw_inputs(x, 3, 0.2, gen)) for x in frames]


def _model(name: str = "rnem") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, 32)


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


@pytest.mark.parametrize("name", ["rnem", "lstm"])
def test_the_step_equals_the_eager_loop_it_replaced(name):
    frames = _frames(WARMUP + 3)
    old, new = _model(name), _model(name)
    old_losses = _old_loop(old, torch.optim.Adam(old.parameters(), lr=1e-3), frames, torch.Generator().manual_seed(1))
    step = TrainStep(new, make_optimizer(new.parameters(), 1e-3, torch.device("cpu")))
    new_losses = _step_loop(step, frames, torch.Generator().manual_seed(1))
    assert [x.item() for x in new_losses] == [x.item() for x in old_losses]
    _assert_same(old, new)


def test_a_failed_capture_warns_once_and_trains_on_eagerly():
    """On CPU a capture always fails: after the warm-up, one line, then the same updates as eager."""
    frames = _frames(WARMUP + 3)
    eager, wanted = _model(), _model()
    cpu = torch.device("cpu")
    eager_losses = _step_loop(TrainStep(eager, make_optimizer(eager.parameters(), 1e-3, cpu)), frames,
                              torch.Generator().manual_seed(1))
    warnings: list[str] = []
    step = TrainStep(wanted, make_optimizer(wanted.parameters(), 1e-3, cpu), graph=True, warn=warnings.append)
    losses = _step_loop(step, frames, torch.Generator().manual_seed(1))
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith("warning: CUDA graph capture failed (") and warnings[0].endswith("training goes on eagerly")
    assert not step.captured and step.eager_updates == len(frames)
    assert [x.item() for x in losses] == [x.item() for x in eager_losses]
    _assert_same(eager, wanted)


def test_the_harness_updates_through_the_step_function(tiny32, tmp_path, monkeypatch):
    """Every training update goes through ``step.update`` (what a graph captures), and an epoch of
    the harness equals the old loop over the same batches and noise: losses and weights."""
    losses = []
    real = step_module.update

    def recorded(*args, **kwargs):
        losses.append(real(*args, **kwargs))
        return losses[-1]

    monkeypatch.setattr(step_module, "update", recorded)
    # fp32 on every CPU: the old loop below runs no autocast, and bf16 is the default where it is native
    config = make_config("rnem", str(tiny32), k=2, epochs=1, batch_size=8, steps=4, device="cpu", progress=False,
                         bf16=False)
    trainer = Trainer(dataclasses.replace(config, cuda_graph=True), tmp_path / "new", progress=False)
    assert not trainer.train_step.graph_wanted  # CPU: never captured, whatever the config says
    cursor = trainer.train_epoch(0)
    assert len(losses) == cursor.done == 4

    old = Trainer(config, tmp_path / "old", progress=False)  # the same initial weights (seeded)
    old.train_loader.set_epoch(0)
    gen = torch.Generator().manual_seed(_seed(config.seed, 0, 0, 0))  # the harness's epoch-0 stream
    frames = [batch["features"][:, : config.steps + 1] for batch in old.train_loader]
    old_losses = []
    for x in frames:
        loss = sequence_loss(old.net, x, old.k, config.noise, gen)
        old.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        old.optimizer.step()
        old_losses.append(loss.detach())
    assert [x.item() for x in losses] == [x.item() for x in old_losses]
    assert cursor.loss_sum == sum(x.double() * 8 for x in old_losses).item()
    _assert_same(trainer.net, old.net)


def test_optimizer_states_cross_between_capturable_and_not():
    """A CUDA run's Adam is capturable (its step count on the GPU), a CPU run's is not, where a
    capturable Adam cannot step: ``match_capturable`` converts a loaded state, keeping values."""
    model = _model("rnn")
    saved_from = torch.optim.Adam(model.parameters(), lr=1e-3)
    _old_loop(model, saved_from, _frames(2), torch.Generator().manual_seed(1))
    state = saved_from.state_dict()
    as_if_cuda = {**state, "param_groups": [{**g, "capturable": True} for g in state["param_groups"]]}

    resumed = torch.optim.Adam(model.parameters(), lr=1e-3)
    resumed.load_state_dict(as_if_cuda)
    assert resumed.param_groups[0]["capturable"]  # the saved flag wins on load
    match_capturable(resumed, torch.device("cpu"))
    assert not resumed.param_groups[0]["capturable"]
    steps = [s["step"] for s in resumed.state.values()]
    assert all(s.device.type == "cpu" and s.dtype == torch.float32 and s.item() == 2 for s in steps)
    _old_loop(model, resumed, _frames(1, seed=5), torch.Generator().manual_seed(2))  # steps without complaint
    assert all(s["step"].item() == 3 for s in resumed.state.values())


def test_cuda_graph_holds_only_on_cuda_and_may_change_on_resume(tiny32, tmp_path):
    """``--cuda-graph`` resolves to off where it cannot act (CPU); configs from before it read as
    off; a run may be resumed with it switched (same maths and draws: RESUMABLE_CHANGES)."""
    from rnem_bench.training.config import RunConfig
    from rnem_bench.training.harness import train

    config = make_config("rnn", str(tiny32), epochs=1, batch_size=8, steps=3, device="cpu", progress=False,
                         cuda_graph=True)
    assert not config.cuda_graph
    old = {k: v for k, v in config.to_dict().items() if k != "cuda_graph"}
    assert RunConfig.from_dict(old).cuda_graph is False
    train(config, tmp_path / "run", progress=False)
    switched = dataclasses.replace(config, cuda_graph=True, epochs=2)
    assert train(switched, tmp_path / "run", resume=True, progress=False)["epochs"] == 2
