"""Moved to ``rnem_bench.reproduce.check``; this name keeps old imports working."""

from rnem_bench.reproduce.check import *  # noqa: F401,F403
