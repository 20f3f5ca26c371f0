"""Stop a training run cleanly on Ctrl-C (SIGINT) or SIGTERM (what ``timeout``, a scheduler or a
closing session sends), so that ``--resume`` loses nothing.

Both trainers (``training.harness`` and ``dqn.trainer``) use it the same way::

    with stop_on_signals() as stop:
        while ...:
            one_update()
            if stop.requested:
                save_checkpoint()
                raise Interrupted(stop.signum, "stopped by SIGTERM at ...; saved ...")

The handler only records the signal: the loop looks at it where its state is whole (after an
optimiser update, after an agent step), so no half-applied update is ever saved. A second signal
means "now": it raises ``Interrupted`` at once, keeping the last checkpoint written.

``Interrupted`` is a ``SystemExit`` whose code is the shell's 128 + signal number (130 for
SIGINT, 143 for SIGTERM): a command that lets it pass exits with that status, without a traceback.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(SystemExit):
    """Training stopped by a signal (after saving, unless a second signal cut the save short)."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + signum)
        self.signum = signum
        self.message = message

    def __str__(self) -> str:
        return self.message


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class StopRequest:
    """Set by the signal handler, read by the training loop."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # the user insists: give up the clean stop
            raise Interrupted(signum, f"stopped at once by a second {signal_name(signum)}; "
                                      "the last checkpoint written is kept")
        self.signum = signum


@contextmanager
def stop_on_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[StopRequest]:
    """Route ``signals`` to a ``StopRequest`` while the block runs, then restore the previous
    handlers (library users and tests train in-process). Python lets only the main thread install
    handlers; elsewhere the request is never set and the signals keep their usual effect."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, stop.handle) for s in signals}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)  # None: set outside Python


def resume_command(ctx: click.Context, out: Path, argv: list[str] | None = None) -> str:
    """The command line that continues the run in ``out``: the one given, with --out and --resume."""
    names = []  # the subcommand path, e.g. ["dqn", "train"]
    while ctx.parent is not None:
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    words = list(sys.argv[1:] if argv is None else argv)
    tail = ["..."]
    for i in range(len(words) - len(names) + 1):
        if words[i : i + len(names)] == names:
            tail = words[i + len(names) :]
            break
    if "--out" not in tail and not any(w.startswith("--out=") for w in tail):
        tail += ["--out", str(out)]
    if "--resume" not in tail:
        tail.append("--resume")
    return shlex.join(["rnem-bench", *names, *tail])
