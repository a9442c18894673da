"""What the ``lineguard`` command says when it cannot do what it was asked.

A user's mistake (a bad file, a bad policy, a bad option) is one line on stderr,
``lineguard: error: ...``, and exit code 2; never a traceback. Ctrl-C exits 130 and a
closed output pipe (``lineguard replay x | head``) exits 141, the codes a shell gives a
process stopped by SIGINT or SIGPIPE, quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any, NoReturn

from pydantic import ValidationError

from workers.errors import InputError, LineguardError, PolicyError

EXIT_FAILED = 1
EXIT_MISTAKE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
PREFIX = "lineguard: error: "


class Problem(LineguardError):
    """A mistake in how lineguard was called: an option's value, a file, a setting."""


MISTAKES: tuple[type[LineguardError], ...] = (Problem, InputError, PolicyError)
"""The errors that are the user's to fix: exit 2."""


def say(message: str, stream: IO[str] | None = None) -> None:
    """Print ``lineguard: error: message`` as one line."""
    one_line = " ".join(message.split("\n"))
    print(f"{PREFIX}{one_line}", file=stream or sys.stderr)


def guarded(run: Callable[[], int]) -> int:
    """Run a command; turn mistakes, Ctrl-C and a closed pipe into their exit codes."""
    try:
        code = run()
        sys.stdout.flush()
        return code
    except MISTAKES as exc:
        say(str(exc))
        return EXIT_MISTAKE
    except LineguardError as exc:
        say(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def settings_problem(exc: ValidationError, names: Mapping[str, str] | None = None) -> Problem:
    """One line per pydantic error joined by '; ', each naming the option (or field)."""
    names = names or {}
    parts = []
    for error in exc.errors():
        path = dotted(error["loc"])
        name = names.get(path, path) or "value"
        parts.append(f"{name}: {error['msg']}{_got(error)}")
    return Problem("; ".join(parts))


def dotted(location: tuple[int | str, ...]) -> str:
    """``('device_switching', 'windows', 0, 'hours')`` -> ``device_switching.windows[0].hours``."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _got(error: Mapping[str, Any]) -> str:
    if "input" not in error or isinstance(error["input"], dict | list):
        return ""
    return f" (got {error['input']!r})"


class Parser(argparse.ArgumentParser):
    """argparse with the project's one-line error and exit code 2."""

    def error(self, message: str) -> NoReturn:
        say(f"{message} (see `{self.prog} --help`)")
        sys.exit(EXIT_MISTAKE)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def positive_number(text: str) -> float:
    """An argparse type: a number above zero."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value
