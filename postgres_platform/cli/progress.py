"""A progress bar for a command's long steps, on stderr, only when stderr is a terminal.

    from postgres_platform.cli.progress import steps

    with steps("building images", total=len(builds)) as advance:
        for build in builds:
            advance(0, f"building {build.reference}")  # what runs now, nothing done yet
            ...
            advance()  # one step done (advance(2.5): that much of `total`)

`steps(description, total)` is a context manager yielding `advance(amount=1.0, description=None)`
(its type: `Advance`; `no_progress` is one that does nothing, a default for a function's parameter):
`amount` is added to what is done, `description`, when given, replaces the text shown. `total=None`
draws a bar that only pulses (the length is not known). Leaving the block removes the bar (transient),
also on an exception or Ctrl-C.

When stderr is not a terminal (tests, pipes, CI logs, 2>file) nothing is drawn and `advance` does
nothing, so stdout, stderr and every --json stay byte for byte what they were. stdout is left alone:
a line printed while the bar is drawn goes above it only when stdout is that terminal too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn


class Advance(Protocol):
    def __call__(self, amount: float = 1.0, description: str | None = None) -> None: ...


def no_progress(amount: float = 1.0, description: str | None = None) -> None:
    """An `advance` that does nothing: what `steps` yields when it draws nothing, and the default of a
    function that takes one (`def drill(servers, advance: Advance = no_progress)`)."""


@contextmanager
def steps(description: str, total: float | None = None) -> Iterator[Advance]:
    """A bar on stderr for the block (a no-op unless stderr is a terminal); yields `advance`."""
    if not sys.stderr.isatty():
        yield no_progress
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        # A line printed on stdout goes above the bar only when stdout is the terminal too: redirected,
        # rich would send it to the bar's stream (stderr) instead of the pipe.
        redirect_stdout=sys.stdout.isatty(),
    )
    task = progress.add_task(description, total=total)

    def advance(amount: float = 1.0, description: str | None = None) -> None:
        if description is None:
            progress.advance(task, amount)
        else:
            progress.update(task, advance=amount, description=description)

    with progress:
        yield advance
