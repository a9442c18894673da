"""``lineguard simulate``: generate a labelled population to a file or into Kafka.

    lineguard simulate --users 100000 --days 180 --seed 7 \\
        --out events.jsonl --labels labels.jsonl
    lineguard simulate --users 5000 --days 30 --to-kafka 127.0.0.1:9092 --rate 2000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from workers.inputs import open_output
from workers.problems import Problem, positive_number, settings_problem
from workers.replay import parse_moment
from workers.sim.generator import (
    DEFAULT_START,
    Label,
    SimulationConfig,
    WireRecord,
    generate_records,
    labels,
)


def parse_mix(text: str) -> dict[str, float]:
    """``ordinary=0.9,cash_out=0.05,...`` -> weights."""
    mix: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, sep, weight = part.partition("=")
        try:
            mix[name.strip()] = float(weight) if sep else 1.0
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"bad weight in {part!r}") from exc
    if not mix:
        raise argparse.ArgumentTypeError("the mix is empty")
    return mix


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=1_000, help="population size (1000)")
    parser.add_argument("--days", type=int, default=180, help="length of the span (180)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--start", type=parse_moment, default=DEFAULT_START, help="span start (2026-01-01T00:00Z)"
    )
    parser.add_argument(
        "--mix",
        type=parse_mix,
        help="archetype weights, e.g. ordinary=0.8,cash_out=0.1,churner=0.1 "
        "(default: 90%% ordinary, 1%% of each other archetype that fits the span)",
    )
    parser.add_argument(
        "--duplicate-rate", type=float, default=0.001, help="share of events sent twice"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="write events as JSON lines here ('-': stdout; a name ending .gz: gzip)",
    )
    parser.add_argument(
        "--labels", type=Path, help="write one JSON label per user here (.gz: gzip)"
    )
    parser.add_argument("--to-kafka", metavar="BOOTSTRAP", help="produce into the input topics")
    parser.add_argument(
        "--rate",
        type=positive_number,
        default=1_000.0,
        help="events per second offered to Kafka (1000)",
    )
    parser.add_argument("--spill-dir", type=Path, help="where to sort large populations (tmp)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


class Progress:
    """A one-line progress bar on stderr, redrawn at most twice a second."""

    def __init__(self, total_users: int, enabled: bool, stream: IO[str] = sys.stderr) -> None:
        self.total_users = total_users
        self.enabled = enabled
        self.stream = stream
        self.users = 0
        self.events = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def user_built(self) -> None:
        self.users += 1
        self.tick()

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < 0.5):
            return
        self._drawn = now
        done = self.users / self.total_users
        bar = "#" * int(done * 30)
        elapsed = now - self.started
        rate = self.events / elapsed if elapsed > 0 else 0.0
        self.stream.write(
            f"\r[{bar:<30}] {self.users:,}/{self.total_users:,} users  "
            f"{self.events:,} events  {rate:,.0f} ev/s  {elapsed:,.0f}s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.tick(force=True)
            self.stream.write("\n")


def _counted(records: Iterator[WireRecord], progress: Progress) -> Iterator[WireRecord]:
    for record in records:
        progress.events += 1
        if progress.events & 0x3FF == 0:
            progress.tick()
        yield record


def _label_writer(handle: IO[bytes] | None, progress: Progress) -> Callable[[Label], None]:
    def write(label: Label) -> None:
        if handle is not None:
            handle.write(label.model_dump_json(exclude_defaults=True).encode() + b"\n")
        progress.user_built()

    return write


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.to_kafka is None and args.labels is None:
        raise Problem("give --out, --labels and/or --to-kafka")
    try:
        config = SimulationConfig(
            users=args.users,
            days=args.days,
            seed=args.seed,
            start=args.start,
            mix=args.mix,
            duplicate_rate=args.duplicate_rate,
        )
    except ValidationError as exc:
        names = {field: f"--{field.replace('_', '-')}" for field in SimulationConfig.model_fields}
        raise settings_problem(exc, names) from exc
    return _simulate(config, args)


def _open(path: Path, stack: ExitStack) -> IO[bytes]:
    return open_output(path, stack)


def _simulate(config: SimulationConfig, args: argparse.Namespace) -> int:
    progress = Progress(config.users, enabled=not args.quiet and sys.stderr.isatty())
    with ExitStack() as stack:
        label_file = None if args.labels is None else _open(args.labels, stack)
        if args.out is None and args.to_kafka is None:
            write_label = _label_writer(label_file, progress)
            for label in labels(config):
                write_label(label)
            progress.close()
            return 0
        records = _counted(
            generate_records(
                config, on_label=_label_writer(label_file, progress), spill_dir=args.spill_dir
            ),
            progress,
        )
        if args.to_kafka is not None:
            from workers.settings import Settings
            from workers.sim.producer import offer

            if args.out is not None:
                records = _tee(records, _open(args.out, stack))
            settings = Settings(brokers=args.to_kafka.split(","))
            report = asyncio.run(offer(records, settings, args.rate))
            progress.close()
            print(
                f"sent {report.records:,} events in {report.elapsed_seconds:,.1f}s "
                f"({report.achieved_rate:,.0f}/s offered at {args.rate:,.0f}/s; "
                f"{report.behind_seconds:,.1f}s behind schedule at the end)",
                file=sys.stderr,
            )
            return 0
        out = _open(args.out, stack)
        started = time.monotonic()
        for record in records:
            out.write(record.value + b"\n")
        progress.close()
        elapsed = time.monotonic() - started
        print(
            f"{config.users:,} users, {progress.events:,} events in {elapsed:,.1f}s "
            f"({progress.events / max(elapsed, 1e-9):,.0f} ev/s); span "
            f"{_stamp(config.start)} .. {_stamp(config.ends_at)} (use the end as --until)",
            file=sys.stderr,
        )
    return 0


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _tee(records: Iterator[WireRecord], out: IO[bytes]) -> Iterator[WireRecord]:
    for record in records:
        out.write(record.value + b"\n")
        yield record
