"""What a training run is: ``RunConfig`` (saved as ``config.json`` in the run dir) and presets.

A run is fully described by its config: the harness, ``load_run`` and ``reproduce`` rebuild
everything from it. Presets fix the sizes of a run; ``paper`` follows the paper (appendix A),
``quick`` is small enough for a few minutes on 2 CPU cores (the README's main command).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rnem_bench.errors import RnemBenchError
from rnem_bench.io import atomic_write_text


@dataclass(frozen=True)
class Preset:
    epochs: int
    batch_size: int
    patience: int = 10
    steps: int | None = None                  # model steps per sequence (None: all the dataset has)
    splits: dict[str, int] | None = None      # dataset sizes to generate (None: the task's canonical)
    train_limit: int | None = None            # train/valid on at most this many sequences
    valid_limit: int | None = None


PRESETS: dict[str, Preset] = {
    # Adam 1e-3, batch 64, early stopping patience 10, at most 500 epochs (appendix A).
    "paper": Preset(epochs=500, batch_size=64),
    # ~2-4 minutes for R-NEM K=5 on 2 CPU cores: 256 sequences x 12 steps x 3 epochs.
    "quick": Preset(epochs=3, batch_size=32, steps=12, splits={"train": 256, "valid": 64, "test": 64},
                    train_limit=256, valid_limit=64),
    # Seconds per run: a smoke test of the whole pipeline (tests, `reproduce --preset tiny`).
    "tiny": Preset(epochs=1, batch_size=8, steps=3, splits={"train": 16, "valid": 8, "test": 8},
                   train_limit=16, valid_limit=8),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise RnemBenchError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})")
    return PRESETS[name]


@dataclass
class RunConfig:
    """Everything that determines a run. Resolved (no 'auto') before it is saved."""

    model: str
    dataset: str                        # path of the Zarr dataset
    task: str | None                    # task whose canonical recipe the dataset matches (else None)
    k: int                              # components while training (1 for rnn/lstm)
    noise: float                        # bit-flip probability of the input frames
    seed: int
    image_size: int
    steps: int                          # model steps per sequence: frames 0..steps are read
    dataset_fingerprint: str = ""
    preset: str = "paper"
    epochs: int = 500
    batch_size: int = 64
    lr: float = 1e-3
    patience: int = 10
    train_limit: int | None = None
    valid_limit: int | None = None
    use_actions: bool = False           # feed the dataset's `actions` (invaders)
    model_options: dict[str, Any] = field(default_factory=dict)  # NEMConfig overrides, e.g. n_actions
    device: str = "cpu"                 # "cpu", "cuda", "cuda:1", ...
    bf16: bool = False                  # bf16 autocast of convolutions and matmuls (native bf16 only)
    compile: bool = False               # torch.compile the EM step (opt-in: it did not pay on CPU or an H200)
    reference_decoder: bool = False     # resize-then-convolve decoder instead of the exact x2 phase form
    world_size: int = 1                 # DDP processes (torchrun); batch_size is per process
    init: str = "original"              # parameter init: the original code's ("original") or "pytorch"
    cuda_graph: bool = False            # capture the update as a CUDA graph (single-process CUDA; training/step.py)
    probe_every: int = 0                # > 0: also validate every this many updates (probes.jsonl); 0: off
    probe_limit: int | None = 256       # sequences of the validation split a probe scores

    # Fields that may change when a run is resumed: they do not change its maths, at most its
    # rounding (the device, the decoder's exact phase form, a captured update's bf16 casts).
    RESUMABLE_CHANGES = ("epochs", "patience", "device", "dataset", "world_size", "reference_decoder", "cuda_graph",
                         "probe_every", "probe_limit")

    def validate(self) -> None:
        checks = [
            (self.k >= 1, f"k must be >= 1, got {self.k}"),
            (0.0 <= self.noise < 0.5, f"noise must be in [0, 0.5), got {self.noise}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.patience >= 1, f"patience must be >= 1, got {self.patience}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.init in ("original", "pytorch"), f"init must be 'original' or 'pytorch', got '{self.init}'"),
            (self.probe_every >= 0, f"probe_every must be >= 0, got {self.probe_every}"),
            (self.probe_limit is None or self.probe_limit >= 1, f"probe_limit must be >= 1, got {self.probe_limit}"),
        ]
        for ok, message in checks:
            if not ok:
                raise RnemBenchError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        if not isinstance(d, dict):
            raise RnemBenchError(f"a run config is a JSON object, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        missing = {"model", "dataset", "k", "noise", "seed", "image_size", "steps"} - set(d)
        if missing:
            raise RnemBenchError(f"run config lacks field(s): {', '.join(sorted(missing))}")
        for name, value in d.items():
            kinds = _FIELD_TYPES.get(name)
            ok = kinds is None or (isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds))
            if not ok and not (value is None and name in _OPTIONAL):
                raise RnemBenchError(f"run config field '{name}' has the wrong type ({type(value).__name__})")
        known = {k: v for k, v in d.items() if k in names}
        # config.json files written before 'init' existed are runs that started from PyTorch's init
        known.setdefault("init", "pytorch")
        return cls(**known)

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise RnemBenchError(f"no run config at {path}") from None
        except (json.JSONDecodeError, TypeError) as err:
            raise RnemBenchError(f"{path} is not a valid run config: {err}") from None

    def differences(self, other: "RunConfig") -> list[str]:
        """Fields that differ from ``other`` and would change the run's result if resumed."""
        a, b = self.to_dict(), other.to_dict()
        return [name for name in a if name not in self.RESUMABLE_CHANGES and a[name] != b[name]]


# JSON types of the saved fields (config.json is read back on resume, evaluate and show)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,), "dataset": (str,), "task": (str,), "k": (int,), "noise": (int, float), "seed": (int,),
    "image_size": (int,), "steps": (int,), "dataset_fingerprint": (str,), "preset": (str,), "epochs": (int,),
    "batch_size": (int,), "lr": (int, float), "patience": (int,), "train_limit": (int,), "valid_limit": (int,),
    "use_actions": (bool,), "model_options": (dict,), "device": (str,), "bf16": (bool,), "compile": (bool,),
    "world_size": (int,), "reference_decoder": (bool,), "init": (str,), "cuda_graph": (bool,),
    "probe_every": (int,), "probe_limit": (int,),
}
_OPTIONAL = {"task", "train_limit", "valid_limit", "probe_limit"}
