"""Reference runs: the TOML files in the top-level ``baselines/`` folder (one per run of the
paper's comparison). They install as package data, ``rnem_bench/baselines/`` (``pyproject.toml``
maps the folder into the package as it maps ``generators/``), so an installed wheel has them.

A reference run names a model, the task it trains on, K, the noise, the training caps and the
seeds; ``[[evaluate]]`` lists the test sets (task, K) its best checkpoint is scored on, and
``[paper.TASK]`` holds the figures the paper states for it (``ari``, ``bce``, ``relational_bce``).
``rnem-bench reproduce`` trains and evaluates them. (A *recipe*, by contrast, fixes a dataset:
``rnem_bench.recipes``.)
"""

from __future__ import annotations

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the `tomli` package
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rnem_bench.errors import RnemBenchError


def shipped_reference_runs_dir() -> Path:
    """The folder of the shipped reference runs: ``rnem_bench/baselines/`` where the package is
    installed from a wheel, else the checkout's top-level ``baselines/`` (an editable install, or a
    checkout on the path)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "baselines"
    return installed if installed.is_dir() else package.parent / "baselines"


BASELINES_DIR = shipped_reference_runs_dir()
PAPER_METRICS = ("ari", "bce", "relational_bce")


@dataclass(frozen=True)
class Evaluation:
    task: str
    k: int


@dataclass(frozen=True)
class ReferenceRun:
    name: str                           # the file's stem, e.g. "balls4-rnem-k5"
    model: str
    task: str                           # training task
    k: int
    noise: float
    epochs: int = 500
    patience: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0,)
    n_actions: int | None = None
    evaluate: tuple[Evaluation, ...] = ()
    paper: dict[str, dict[str, float]] = field(default_factory=dict)  # eval task -> metric -> value

    @classmethod
    def from_file(cls, path: Path) -> "ReferenceRun":
        from rnem_bench.models import MODELS
        from rnem_bench.tasks import TASKS

        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise RnemBenchError(f"{path}: not valid TOML ({err})") from None
        known = {"model", "task", "k", "noise", "epochs", "patience", "batch_size", "lr", "seeds", "n_actions", "evaluate", "paper"}
        unknown = set(raw) - known
        if unknown:
            raise RnemBenchError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
        for name in ("model", "task", "k", "noise"):
            if name not in raw:
                raise RnemBenchError(f"{path}: missing field '{name}'")
        if raw["model"] not in MODELS:
            raise RnemBenchError(f"{path}: unknown model '{raw['model']}'")
        evaluations = tuple(Evaluation(str(e["task"]), int(e["k"])) for e in raw.get("evaluate", [{"task": raw["task"], "k": raw["k"]}]))
        for task in {raw["task"], *(e.task for e in evaluations), *raw.get("paper", {})}:
            if task not in TASKS:
                raise RnemBenchError(f"{path}: unknown task '{task}'")
        for task, figures in raw.get("paper", {}).items():
            bad = set(figures) - set(PAPER_METRICS)
            if bad:
                raise RnemBenchError(f"{path}: [paper.{task}] has unknown metric(s) {', '.join(sorted(bad))} (known: {', '.join(PAPER_METRICS)})")
        seeds = tuple(int(s) for s in raw.get("seeds", [0]))
        if not seeds:
            raise RnemBenchError(f"{path}: 'seeds' is empty")
        return cls(
            name=path.stem, model=raw["model"], task=raw["task"], k=int(raw["k"]), noise=float(raw["noise"]),
            epochs=int(raw.get("epochs", 500)), patience=int(raw.get("patience", 10)),
            batch_size=int(raw.get("batch_size", 64)), lr=float(raw.get("lr", 1e-3)), seeds=seeds,
            n_actions=raw.get("n_actions"), evaluate=evaluations,
            paper={t: {m: float(v) for m, v in f.items()} for t, f in raw.get("paper", {}).items()},
        )


def load_reference_runs(directory: Path = BASELINES_DIR) -> dict[str, ReferenceRun]:
    """Every reference run in ``directory``, by name."""
    directory = Path(directory)
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise RnemBenchError(f"no reference runs (*.toml) in {directory}")
    return {f.stem: ReferenceRun.from_file(f) for f in files}


def runs_for(task: str, runs: dict[str, ReferenceRun]) -> list[ReferenceRun]:
    """The reference runs ``reproduce TASK`` runs: those trained on TASK, or (for a test-only task
    such as balls678) those evaluated on it."""
    chosen = [r for r in runs.values() if r.task == task or any(e.task == task for e in r.evaluate)]
    if not chosen:
        raise RnemBenchError(f"no reference run trains on or evaluates task '{task}'")
    return chosen
