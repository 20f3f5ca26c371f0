"""The CPU tier: mini tasks are their parents at 32x32 and 20 steps, their copy-frame baselines
are the pinned ones, and every mini recipe trains on a mini task within a fixed update budget."""

from __future__ import annotations

import pytest

from rnem_bench.data.generate import generate_dataset
from rnem_bench.data.store import open_dataset
from rnem_bench.leaderboard.board import COPY_BASELINES, GRID_ARI
from rnem_bench.tasks import TASKS, get_task
from rnem_bench.reproduce.reference_runs import load_reference_runs as load_baselines

MINI = [name for name, task in TASKS.items() if task.tier == "mini"]


def test_mini_tasks_are_the_paper_tasks_at_32_pixels():
    assert MINI == ["mini-balls4", "mini-balls678", "mini-curtain"]
    for name in MINI:
        mini, parent = get_task(name), get_task(name.removeprefix("mini-"))
        m, p = mini.recipe(), parent.recipe()
        assert m.params["image_size"] == 32 and m.params["steps"] == 20 and mini.seed == parent.seed
        # the same physics in world units: only the resolution and the length differ
        differ = {key for key in p.params if p.params[key] != m.params[key]}
        assert differ == {"image_size", "steps"}, differ
        assert (mini.k_train, mini.k_eval, mini.noise) == (parent.k_train, parent.k_eval, parent.noise)
    assert get_task("mini-balls678").train_task == "mini-balls4"


@pytest.mark.parametrize("name", MINI)
def test_pinned_copy_baselines_are_the_canonical_mini_test_split(tmp_path, name):
    """Recompute each mini task's pinned baselines (copy-frame losses, grid ARIs) from its canonical test split (2,000 sequences,
    a few seconds): they guard against generator changes that alter the data but not the recipe."""
    from rnem_bench.evaluation.evaluator import copy_baselines, grid_ari_baselines

    task = get_task(name)
    recipe = task.recipe(splits={"test": task.splits["test"]})
    ds = open_dataset(generate_dataset(recipe, tmp_path / "t.zarr", workers=1, progress=False))
    assert copy_baselines(ds) == pytest.approx(COPY_BASELINES[name], rel=1e-6)
    assert grid_ari_baselines(ds) == pytest.approx(GRID_ARI[name], abs=2e-6)


def test_every_mini_recipe_trains_on_a_mini_task_with_a_fixed_budget():
    recipes = [r for r in load_baselines().values() if get_task(r.task).tier == "mini"]
    assert {(r.model, r.task, r.k) for r in recipes} == {
        ("rnem", "mini-balls4", 5), ("rnem", "mini-balls4", 8), ("rnem-noatt", "mini-balls4", 5),
        ("rnn-em", "mini-balls4", 5), ("rnn", "mini-balls4", 1), ("lstm", "mini-balls4", 1),
        ("rnem", "mini-curtain", 5), ("rnn", "mini-curtain", 1), ("lstm", "mini-curtain", 1),
    }
    for r in recipes:
        assert r.patience >= r.epochs, f"{r.name}: early stopping would make the update count machine-dependent"
        assert all(get_task(e.task).tier == "mini" for e in r.evaluate)
        if r.task == "mini-balls4":
            assert ("mini-balls678", 1 if r.k == 1 else 8) in {(e.task, e.k) for e in r.evaluate}
    assert len(load_baselines()["mini-balls4-rnem-k5"].seeds) == 3 and len(load_baselines()["mini-balls4-lstm"].seeds) == 3
