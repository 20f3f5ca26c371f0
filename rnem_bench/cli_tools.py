"""``LazyGroup``: a click group whose subcommands are imported only when used.

``rnem-bench --help`` then stays fast (no torch or zarr import), and a missing optional extra
(ale-py) breaks only the command that needs it, with one line naming it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from rnem_bench.errors import RnemBenchError


class LazyGroup(click.Group):
    """A group with eager subcommands (added as usual) and lazy ones: ``lazy`` maps a name to the
    ``"module:attribute"`` of a click command, imported on first use."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {name for name in self.lazy if self._importable(name)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in self.lazy or not self._importable(name):
            return super().get_command(ctx, name)
        module, attr = self.lazy[name].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ImportError as err:  # a missing optional extra: say which, in one line
            raise RnemBenchError(f"'{ctx.command_path} {name}' cannot start: {err}") from None

    def _importable(self, name: str) -> bool:
        return importlib.util.find_spec(self.lazy[name].split(":")[0]) is not None


def run_command(command: click.Command, **kwargs) -> None:
    """Run a click command as a program: user errors (``RnemBenchError``) become one line on stderr
    and exit status 2; Ctrl-C exits 130."""
    try:
        command.main(standalone_mode=False, **kwargs)
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
