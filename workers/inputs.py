"""Event and label files as the commands read them: ``-`` is standard input, gzip is
read transparently (by its magic bytes, whatever the name), and a path that is not a
readable file is refused up front with the reason ("no such file", "is a directory").

Every command that reads event files (``replay``, ``evaluate``) goes through here.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import IO, cast

from workers.errors import InputError

STDIN = "-"
GZIP_MAGIC = b"\x1f\x8b"
_REPORT_EVERY = 1 << 12
"""Lines between two progress reports."""


@dataclass(frozen=True)
class Source:
    """One input: a file or standard input, checked readable."""

    name: str
    path: Path | None
    size: int | None
    """Bytes on disk (compressed for gzip); None for standard input."""

    @property
    def is_stdin(self) -> bool:
        return self.path is None


def source(path: Path | str) -> Source:
    """Check ``path`` names something readable now, or raise InputError saying why."""
    name = str(path)
    if name == STDIN:
        return Source(STDIN, None, None)
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot read {name}: is a directory")
    if not path.exists():
        raise InputError(f"cannot read {name}: no such file")
    try:
        with path.open("rb"):
            pass
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from exc
    return Source(name, path, size if path.is_file() else None)


def sources(paths: Iterable[Path | str]) -> list[Source]:
    """Every path checked before any is read; standard input at most once."""
    checked = [source(path) for path in paths]
    if sum(each.is_stdin for each in checked) > 1:
        raise InputError("standard input ('-') can be read only once")
    return checked


def total_size(checked: Iterable[Source]) -> int | None:
    """Bytes to read in all, or None when standard input (of unknown length) is among them."""
    sizes = [each.size for each in checked]
    return None if any(size is None for size in sizes) else sum(s for s in sizes if s)


def read_lines(
    each: Source, on_bytes: Callable[[int], None] | None = None
) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of one source, decompressed when it is gzip.

    ``on_bytes`` is told, now and then, how many more bytes of the source (as stored) were
    read, for a progress bar.
    """
    with ExitStack() as stack:
        raw = _open_raw(each, stack)
        compressed = raw.peek(2)[:2] == GZIP_MAGIC
        handle: Iterable[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        reported = 0
        try:
            for number, line in enumerate(handle, start=1):
                if on_bytes is not None and number % _REPORT_EVERY == 0:
                    reported = _report(raw, reported, on_bytes)
                yield number, line
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise InputError(f"cannot read {each.name}: not valid gzip ({exc})") from exc
        if on_bytes is not None:
            _report(raw, reported, on_bytes)


def _open_raw(each: Source, stack: ExitStack) -> BufferedReader:
    if each.path is None:
        stdin = sys.stdin.buffer
        if not isinstance(stdin, BufferedReader):
            raise InputError("cannot read standard input as bytes")
        return stdin
    try:
        return stack.enter_context(each.path.open("rb"))
    except OSError as exc:
        raise InputError(f"cannot read {each.name}: {exc.strerror or exc}") from exc


def _report(raw: IO[bytes], reported: int, on_bytes: Callable[[int], None]) -> int:
    try:
        position = raw.tell()
    except OSError:  # a pipe
        return reported
    if position > reported:
        on_bytes(position - reported)
    return max(position, reported)


def open_output(path: Path, stack: ExitStack) -> IO[bytes]:
    """``path`` for writing (``-``: standard output); a name ending ``.gz`` is gzip."""
    if str(path) == STDIN:
        return sys.stdout.buffer
    if path.is_dir():
        raise InputError(f"cannot write {path}: is a directory")
    try:
        if path.suffix == ".gz":
            compressed = cast(IO[bytes], gzip.open(path, "wb", compresslevel=6))  # noqa: SIM115
            return stack.enter_context(compressed)
        return stack.enter_context(path.open("wb"))
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
