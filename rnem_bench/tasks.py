"""The benchmark's tasks (docs/design.md, "Tasks"): each fixes a canonical recipe and the protocol.

Two tiers: ``paper`` holds the paper's 64x64 tasks (trained where a GPU is); ``mini`` holds the CPU
tier, the same phenomena at 32x32 with 20 steps and smaller splits, sized so that 2 CPU cores train
every reference model (as MinAtar is to Atari). A mini task keeps its parent's physics in world
units (sizes relative to the image, speeds per frame), K, noise and seed; only the resolution, the
length and the split sizes differ.

Add a task with one entry in ``TASKS``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rnem_bench.errors import RnemBenchError
from rnem_bench.policies import SPACEINVADERS_DQN, SPACEINVADERS_DQN_SHA256
from rnem_bench.recipes import Recipe


@dataclass(frozen=True)
class Task:
    name: str
    generator: str
    params: dict[str, Any]            # overrides of the generator's Params defaults
    k_train: int                      # components when training on this task
    k_eval: int                       # components when evaluating on this task
    noise: float = 0.2                # bit-flip probability of the model input
    train_task: str | None = None     # set for test-only tasks: models trained on this task
    splits: dict[str, int] = field(default_factory=lambda: {"train": 50_000, "valid": 10_000, "test": 10_000})
    seed: int = 0
    orig_name: str = ""               # the original code's dataset name
    tier: str = "paper"               # "paper" (64x64, GPU) or "mini" (32x32, the CPU tier)

    def recipe(self, splits: dict[str, int] | None = None, seed: int | None = None) -> Recipe:
        """The canonical recipe, or a variant of it (other sizes or seed: not leaderboard-valid)."""
        from rnem_bench.generators import get_generator

        gen = get_generator(self.generator)
        params = gen.Params(**self.params)
        params.validate()
        return Recipe(
            generator=self.generator,
            params=asdict(params),
            seed=self.seed if seed is None else seed,
            splits=dict(self.splits if splits is None else splits),
        )


MINI = {"image_size": 32, "steps": 20}
MINI_SPLITS = {"train": 10_000, "valid": 1_000, "test": 2_000}

TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("balls4", "balls", {"n_balls": (4, 4)}, k_train=5, k_eval=5, orig_name="balls4mass64"),
        Task("balls678", "balls", {"n_balls": (6, 8)}, k_train=8, k_eval=8, train_task="balls4",
             splits={"test": 10_000}, seed=1, orig_name="balls678mass64"),
        Task("curtain", "curtain", {}, k_train=5, k_eval=5, seed=2, orig_name="balls3curtain64"),
        # Recorded by the DQN trained here and shipped in rnem_bench/policies, epsilon 0.05.
        Task("invaders", "invaders", {"policy": f"dqn:{SPACEINVADERS_DQN}", "policy_sha256": SPACEINVADERS_DQN_SHA256},
             k_train=4, k_eval=4, noise=0.02, seed=3, orig_name="atari"),
        # The CPU tier: 32x32 frames, 20 steps (21 frames: the 10 + 10 simulation fits).
        Task("mini-balls4", "balls", {"n_balls": (4, 4), **MINI}, k_train=5, k_eval=5, splits=MINI_SPLITS,
             tier="mini"),
        Task("mini-balls678", "balls", {"n_balls": (6, 8), **MINI}, k_train=8, k_eval=8, train_task="mini-balls4",
             splits={"test": MINI_SPLITS["test"]}, seed=1, tier="mini"),
        Task("mini-curtain", "curtain", MINI, k_train=5, k_eval=5, splits=MINI_SPLITS, seed=2, tier="mini"),
    ]
}
TIERS = ("paper", "mini")


def canonical_tasks(recipe: Recipe) -> list[str]:
    """The tasks whose canonical recipe is ``recipe`` (by fingerprint): a dataset made by it can
    enter their leaderboards. Tasks whose generator cannot be imported here (ale-py) are skipped."""
    names = []
    for task in TASKS.values():
        if task.generator != recipe.generator:
            continue
        try:
            if task.recipe().fingerprint() == recipe.fingerprint():
                names.append(task.name)
        except RnemBenchError:
            continue
    return names


def task_family(recipe: Recipe) -> Task | None:
    """The trainable task whose generator and parameters made ``recipe`` (any sizes or seed): it
    gives a custom-sized dataset its K and noise."""
    for task in TASKS.values():
        if task.train_task is None and task.generator == recipe.generator:
            try:
                canonical = task.recipe()
            except (ImportError, RnemBenchError):  # that task's generator is not installed (e.g. ale-py missing)
                continue
            if canonical.identity_params() == recipe.identity_params():  # where a policy file lies does not count
                return task
    return None


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise RnemBenchError(f"unknown task '{name}' (known: {', '.join(TASKS)})")
    return TASKS[name]
