"""Evaluation: metrics, the Evaluator (usable without our models), result files, figures.

The public names are imported on first use, so that reading and checking result files
(``submit``, ``leaderboard``) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalConfig": "rnem_bench.evaluation.evaluator",
    "Evaluator": "rnem_bench.evaluation.evaluator",
    "evaluate_run": "rnem_bench.evaluation.run",
    "score_predictions": "rnem_bench.evaluation.predictions",
    "write_predictions": "rnem_bench.evaluation.predictions",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rnem_bench.evaluation' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
