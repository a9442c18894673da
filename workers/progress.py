"""A progress bar on stderr for long offline work (``replay``, ``evaluate``).

Shown when stderr is a terminal, hidden when it is piped or redirected; ``--progress`` and
``--no-progress`` force either. The bar is transient: once the work ends it is erased, and
the command's summary line is printed as before.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Meter(Protocol):
    def advance(self, read_bytes: int) -> None: ...

    def count(self, events: int = 1) -> None: ...


class _Silent:
    def advance(self, read_bytes: int) -> None:
        pass

    def count(self, events: int = 1) -> None:
        pass


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: only when stderr is a terminal)",
    )


def wanted(choice: bool | None) -> bool:
    """The ``--progress`` choice, or whether stderr is a terminal when none was made."""
    return sys.stderr.isatty() if choice is None else choice


@contextmanager
def meter(description: str, total_bytes: int | None, enabled: bool) -> Iterator[Meter]:
    """A bar over the input's bytes (a spinner when the total is unknown) with events read."""
    if not enabled:
        yield _Silent()
        return
    console = Console(stderr=True, force_terminal=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        refresh_per_second=4,
    )
    with progress:
        task = progress.add_task(description, total=total_bytes, events=0)
        yield _RichMeter(progress, task)


class _RichMeter:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self._events = 0

    def advance(self, read_bytes: int) -> None:
        self._progress.update(self._task, advance=read_bytes, events=self._events)

    def count(self, events: int = 1) -> None:
        self._events += events
