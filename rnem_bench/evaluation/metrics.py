"""Moved to ``rnem_bench.metrics`` (the metrics are pure functions of predictions and ground truth,
used by training as well as by the evaluator); this name keeps old imports working."""

from rnem_bench.metrics import *  # noqa: F401,F403
from rnem_bench.metrics import __all__  # noqa: F401
