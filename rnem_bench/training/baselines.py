"""Moved to ``rnem_bench.reproduce.reference_runs`` (a reference run was called a baseline recipe);
this name keeps old imports working."""

from rnem_bench.reproduce.reference_runs import *  # noqa: F401,F403
from rnem_bench.reproduce.reference_runs import ReferenceRun as BaselineRun  # noqa: F401
from rnem_bench.reproduce.reference_runs import load_reference_runs as load_baselines  # noqa: F401
from rnem_bench.reproduce.reference_runs import runs_for as recipes_for  # noqa: F401
