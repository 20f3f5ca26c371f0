"""The ``rnem-bench`` command line.

Each command lives in the module that owns its concept and is imported only when used, so
``rnem-bench --help`` stays fast and a missing optional extra (ale-py) breaks only its command.
To add a command: write a click command in its module and add one line to ``COMMANDS``.
"""

from __future__ import annotations

import click

from rnem_bench import __version__
from rnem_bench.cli_tools import LazyGroup, run_command

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "generate": "rnem_bench.data.commands:generate",
    "info": "rnem_bench.data.commands:info",
    "verify": "rnem_bench.data.commands:verify",
    "show": "rnem_bench.data.commands:show",
    "demo": "rnem_bench.demo:demo",
    "run": "rnem_bench.training.commands:run",
    "evaluate": "rnem_bench.evaluation.commands:evaluate",
    "score": "rnem_bench.evaluation.commands:score",
    "submit": "rnem_bench.leaderboard.commands:submit",
    "leaderboard": "rnem_bench.leaderboard.commands:leaderboard",
    "reproduce": "rnem_bench.reproduce.commands:reproduce",
    "dqn": "rnem_bench.dqn.commands:dqn",
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name="rnem-bench")
def cli() -> None:
    """rnem-bench: object discovery and physical reasoning from pixels (R-NEM, ICLR 2018)."""


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    run_command(cli)
