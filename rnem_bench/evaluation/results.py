"""Result files: one JSON object per (model, task test split), validated against a versioned schema
shipped in the package (``rnem_bench/schemas/result-v1.json``)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from rnem_bench import __version__
from rnem_bench.data.store import Dataset
from rnem_bench.errors import RnemBenchError
from rnem_bench.tasks import canonical_tasks


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in ``rnem_bench/schemas`` (e.g. ``"result-v1"``)."""
    return json.loads(resources.files("rnem_bench").joinpath("schemas", f"{name}.json").read_text())


def check_schema(obj: Any, schema_name: str, what: str) -> None:
    """Raise a one-line RnemBenchError naming the first offending field."""
    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise RnemBenchError(f"{what}: field '{where}': {error.message}")


def cpu_model() -> str:
    """The CPU's model name where the OS says it (Linux), else ''."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def hardware() -> str:
    """What the evaluation ran on, in words: wall times differ ~2x between 2-core machines."""
    import torch

    cpu = platform.processor() or platform.machine()
    model = cpu_model()
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.system()} {cpu}{' ' + model if model else ''}, {os.cpu_count()} cores{gpu}"[:300]


def make_result(
    metrics: dict[str, Any], *, task: str | None, ds: Dataset, split: str, model: str, k: int,
    seeds: list[int], wall_time_s: float, parameters: int | None = None, source: str = "rnem-bench",
    training: dict[str, Any] | None = None, description: str | None = None, url: str | None = None,
) -> dict[str, Any]:
    """A validated result object. ``task`` defaults to the task whose canonical recipe ``ds`` matches."""
    if task is None:
        task = canonical_task_of(ds) or "custom"
    model_entry: dict[str, Any] = {"name": model, "k": int(k), "parameters": parameters, "source": source}
    if description:
        model_entry["description"] = description
    if url:
        model_entry["url"] = url
    result = {
        "schema": "rnem-bench/result",
        "schema_version": 1,
        "task": task,
        "dataset": {"fingerprint": ds.fingerprint, "split": split, "n_sequences": int(metrics["n_sequences"]),
                    "path": str(ds.path)},
        "model": model_entry,
        "seeds": [int(s) for s in seeds],
        "metrics": metrics,
        "package_version": __version__,
        "hardware": hardware(),
        "wall_time_s": round(float(wall_time_s), 3),
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    if training is not None:
        result["training"] = training
    check_schema(result, "result-v1", "result")
    return result


def canonical_task_of(ds: Dataset) -> str | None:
    """The task whose canonical recipe produced ``ds``, if any."""
    return next(iter(canonical_tasks(ds.recipe)), None)


def write_result(result: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    return path


MAX_RESULT_BYTES = 1 << 20  # a result file is a few kB; refuse anything that could exhaust memory


def non_finite_field(obj: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or Infinity inside ``obj``, else None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        found = non_finite_field(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def read_result(path: str | Path) -> dict[str, Any]:
    """Load and validate a result file (any malformed field is named in the error)."""
    path = Path(path)
    if not path.is_file():
        raise RnemBenchError(f"result file not found: {path}")
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise RnemBenchError(f"{path} is {path.stat().st_size} bytes; a result file holds at most {MAX_RESULT_BYTES}")
    try:
        obj = json.loads(path.read_text())
    except (ValueError, RecursionError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise RnemBenchError(f"{path} is not valid JSON: {str(err)[:200]}") from None
    bad = non_finite_field(obj)
    if bad:  # NaN, Infinity or 1e999: JSON that Python reads but no result may hold
        raise RnemBenchError(f"{path}: field '{bad}': not a finite number")
    check_schema(obj, "result-v1", str(path))
    return obj
