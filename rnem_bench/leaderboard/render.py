"""The leaderboard's renderings, by name: rows (``groups.py``), terminal tables (``terminal.py``),
Markdown and HTML pages (``pages.py``) and plots (``plots.py``). Kept so that old imports of
``rnem_bench.leaderboard.render`` keep working."""

from rnem_bench.leaderboard.groups import *  # noqa: F401,F403
from rnem_bench.leaderboard.groups import COLUMNS, HEADER, STATS_LINE, Column, Group, Stat  # noqa: F401
from rnem_bench.leaderboard.pages import CONTRIBUTING, html_page, markdown, write_pages  # noqa: F401
from rnem_bench.leaderboard.plots import SIM_BASELINE_LABEL, SimulationCurves, plots, simulation_baseline, simulation_curves  # noqa: F401
from rnem_bench.leaderboard.terminal import TermColumn, fit_columns, rich_tables  # noqa: F401
