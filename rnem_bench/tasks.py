"""The benchmark's tasks (DESIGN.md, "Tasks"): each fixes a canonical recipe and the protocol.

Add a task with one entry in ``TASKS``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rnem_bench.errors import RnemBenchError
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


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("balls4", "balls", {"n_balls": (4, 4)}, k_train=5, k_eval=5, orig_name="balls4mass64"),
        Task("balls678", "balls", {"n_balls": (6, 8)}, k_train=8, k_eval=8, train_task="balls4",
             splits={"test": 10_000}, seed=1, orig_name="balls678mass64"),
        Task("curtain", "curtain", {}, k_train=5, k_eval=5, seed=2, orig_name="balls3curtain64"),
        Task("invaders", "invaders", {}, k_train=4, k_eval=4, noise=0.02, seed=3, orig_name="atari"),
    ]
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise RnemBenchError(f"unknown task '{name}' (known: {', '.join(TASKS)})")
    return TASKS[name]
