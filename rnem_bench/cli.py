"""The ``rnem-bench`` command line.

Each command lives in the module that owns its concept and is imported only when used, so
``rnem-bench --help`` stays fast and a missing optional extra (ale-py) breaks only its command.
To add a command: write a click command in its module and add one line to ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from rnem_bench import __version__
from rnem_bench.errors import RnemBenchError

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "generate": "rnem_bench.data.commands:generate",
    "info": "rnem_bench.data.commands:info",
    "verify": "rnem_bench.data.commands:verify",
    "show": "rnem_bench.data.commands:show",
    "demo": "rnem_bench.data.commands:demo",
    "run": "rnem_bench.training.commands:run",
    "evaluate": "rnem_bench.evaluation.commands:evaluate",
    "score": "rnem_bench.evaluation.commands:score",
    "submit": "rnem_bench.leaderboard.commands:submit",
    "leaderboard": "rnem_bench.leaderboard.commands:leaderboard",
    "reproduce": "rnem_bench.training.reproduce:reproduce",
    "dqn": "rnem_bench.dqn.commands:dqn",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._importable(name))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        if not self._importable(name):
            return None
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as err:  # a missing optional extra: say which, in one line
            raise RnemBenchError(f"'rnem-bench {name}' cannot start: {err}") from None

    @staticmethod
    def _importable(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="rnem-bench")
def cli() -> None:
    """rnem-bench: object discovery and physical reasoning from pixels (R-NEM, ICLR 2018)."""


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    try:
        cli.main(standalone_mode=False)
    except RnemBenchError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
