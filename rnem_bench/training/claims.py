"""Moved to ``rnem_bench.reproduce.claims``; this name keeps old imports working."""

from rnem_bench.reproduce.claims import *  # noqa: F401,F403
