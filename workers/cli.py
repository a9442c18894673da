"""The ``lineguard`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``configure(parser)`` and ``run(args) -> int`` and does
no work at import time. A command raises ``workers.problems.Problem`` (or another
project error) for a user's mistake; ``main`` prints it as one line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from workers.problems import Parser, guarded

COMMANDS: dict[str, tuple[str, str]] = {
    "replay": ("workers.replay", "Run the decision core over JSON-lines event files (backtest)."),
    "simulate": ("workers.sim.simulate_cli", "Generate a labelled population of users' events."),
    "evaluate": ("workers.sim.evaluate_cli", "Score a policy against a labelled population."),
    "worker": ("workers.stream.cli", "Run the streaming worker against a Kafka broker."),
    "check-topics": (
        "workers.stream.check_topics",
        "Check the brokers' topics against what the worker needs (read-only).",
    ),
    "policy": (
        "workers.policy_cli",
        "Validate, compare, publish and show the policies the workers run.",
    ),
    "override": (
        "workers.override_cli",
        "Add, list and remove one user's overrides (suppress, force_close, watch).",
    ),
    "demo": ("workers.demo", "Embedded broker + worker + sample traffic, decisions on screen."),
}


class _Command(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(module_name: str) -> _Command:
    return cast(_Command, importlib.import_module(module_name))


DESCRIPTION = (
    "Streaming risk control for consumer credit lines: close risky lines, and tell when a "
    "closed line may be restored. Run `lineguard COMMAND --help` for a command's options."
)


def version() -> str:
    """The installed package's version."""
    from importlib import metadata

    try:
        return metadata.version("lineguard")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (all of them when None)."""
    parser = Parser(prog="lineguard", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"lineguard {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        child.set_defaults(_module=module_name)
        if command in (None, name):
            _load(module_name).configure(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user's mistake is one line and exit 2 (see workers.problems)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = arguments[0] if arguments and arguments[0] in COMMANDS else ""

    def work() -> int:
        args = build_parser(command).parse_args(arguments)
        return _load(args._module).run(args)

    return guarded(work)


if __name__ == "__main__":
    sys.exit(main())
