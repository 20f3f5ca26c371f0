"""Moved to the ``rnem_bench.reproduce`` package (jobs, scoring, report, commands); this name keeps
old imports working."""

from rnem_bench.reproduce.commands import reproduce  # noqa: F401
from rnem_bench.reproduce.jobs import *  # noqa: F401,F403
from rnem_bench.reproduce.report import *  # noqa: F401,F403
from rnem_bench.reproduce.scoring import *  # noqa: F401,F403
