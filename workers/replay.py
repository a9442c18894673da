"""``lineguard replay``: run the decision core over JSON-lines event files (a backtest).

Events apply in file order with the clock at the largest ``occurred_at`` seen so far; then
the clock advances to ``--until`` (inclusive) so time-triggered rules fire. Decisions go to
stdout as JSON lines in the order made; flags and rejected lines to the named files.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from schemas.events import Event
from schemas.outputs import Decision, Flag, Rejection
from workers.core.engine import Engine
from workers.core.lifecycle import Output
from workers.core.policy import Policy, load_policy
from workers.decoding import Rejected, decode_event
from workers.errors import InputError, LineguardError

_MOMENT = TypeAdapter(AwareDatetime)

OFFLINE_LIVE_USERS = 1_000_000
"""Live user states an offline run keeps before holding the rest as bytes: a backtest
touches its whole population all the time, so it trades memory (about 9 KB a live user)
for speed; ``--live-users`` lowers it."""


@dataclass
class ReplayResult:
    decisions: list[Decision] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    events: int = 0
    duplicates: int = 0


@dataclass
class Counts:
    lines: int = 0
    events: int = 0
    duplicates: int = 0
    rejected: int = 0
    flags: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    """Events applied after the clock had passed their occurred_at plus grace, by type."""
    cap_drops: Counter[str] = field(default_factory=Counter)
    """What the per-user state caps forced out, by what."""


def run_engine(
    engine: Engine,
    events: Iterable[Event | Rejection],
    until: datetime | None,
    emit: Callable[[Output | Rejection], None],
    counts: Counts,
) -> None:
    """Feed events through ``engine``, then advance to ``until``; every output goes to ``emit``."""
    for number, item in enumerate(events, start=1):
        if until is not None and not isinstance(item, Rejection) and item.occurred_at > until:
            item = after_until("<events>", number, item, until)
        if isinstance(item, Rejection):
            counts.rejected += 1
            emit(item)
            continue
        step = engine.apply(item)
        counts.events += 1
        counts.duplicates += step.duplicate
        for output in step.outputs:
            emit(output)
    if until is not None:
        for output in engine.advance(until, final=True):
            emit(output)
    drops, late = engine.take_counts()
    counts.cap_drops += drops
    counts.late += late


def after_until(file: str, line: int, event: Event, until: datetime) -> Rejection:
    """An event dated after ``--until``: the input was declared complete up to then, so it
    must not drag the clock (and every user's deadlines) past it."""
    return Rejection(
        file=file,
        line=line,
        error_kind="after_until",
        reason=(
            f"occurred_at {event.occurred_at.isoformat()} is after --until "
            f"{until.isoformat()}: the input was declared complete up to then"
        ),
    )


def replay_events(
    events: Iterable[Event], policy: Policy, until: datetime | None = None
) -> ReplayResult:
    """Replay in-memory events (what ``evaluate`` and the tests use)."""
    result = ReplayResult()
    counts = Counts()

    def collect(output: Output | Rejection) -> None:
        if isinstance(output, Decision):
            result.decisions.append(output)
        elif isinstance(output, Flag):
            result.flags.append(output)
        else:
            result.rejections.append(output)

    run_engine(Engine(policy, live_users=OFFLINE_LIVE_USERS), events, until, collect, counts)
    result.events, result.duplicates = counts.events, counts.duplicates
    return result


def open_input(path: Path) -> IO[bytes]:
    """Open an input file for reading, or raise InputError naming it."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_events(
    paths: Iterable[Path], counts: Counts, until: datetime | None = None
) -> Iterator[Event | Rejection]:
    """Events from JSON-lines files; blank lines skipped, bad lines (and events dated after
    ``until``) become rejections."""
    for path in paths:
        with open_input(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                counts.lines += 1
                decoded = decode_event(line)
                if isinstance(decoded, Rejected):
                    yield Rejection(
                        file=str(path), line=number, error_kind=decoded.kind, reason=decoded.reason
                    )
                elif until is not None and decoded.occurred_at > until:
                    yield after_until(str(path), number, decoded, until)
                else:
                    yield decoded


def parse_moment(text: str) -> datetime:
    try:
        return _MOMENT.validate_python(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 timestamp with an offset (e.g. 2026-06-30T00:00:00Z)"
        ) from exc


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="JSON-lines events")
    parser.add_argument(
        "--until", type=parse_moment, help="advance the clock to this time (inclusive) at the end"
    )
    parser.add_argument("--policy", type=Path, help="policy TOML file (default: packaged policy)")
    parser.add_argument("--flags", type=Path, help="write flags as JSON lines to this file")
    parser.add_argument("--rejects", type=Path, help="write rejected lines as JSON lines here")
    parser.add_argument(
        "--live-users",
        type=int,
        default=OFFLINE_LIVE_USERS,
        help="user states kept as live objects; the rest are held serialised (less memory, "
        f"slower) (default {OFFLINE_LIVE_USERS:,})",
    )


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.policy)
        missing = [str(p) for p in args.files if not p.is_file()]
        if missing:
            raise InputError(f"cannot read {', '.join(missing)}: no such file")
        return _replay(args, policy)
    except LineguardError as exc:
        print(f"lineguard replay: error: {exc}", file=sys.stderr)
        return 2


def _open(path: Path | None) -> IO[bytes] | None:
    if path is None:
        return None
    try:
        return path.open("wb")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _replay(args: argparse.Namespace, policy: Policy) -> int:
    counts = Counts()
    out = sys.stdout.buffer
    flags_file, rejects_file = _open(args.flags), _open(args.rejects)

    def emit(output: Output | Rejection) -> None:
        line = output.model_dump_json().encode() + b"\n"
        if isinstance(output, Decision):
            counts.decisions[output.decision] += 1
            out.write(line)
        elif isinstance(output, Flag):
            counts.flags += 1
            if flags_file is not None:
                flags_file.write(line)
        elif rejects_file is not None:
            rejects_file.write(line)

    engine = Engine(policy, live_users=args.live_users)
    started = time.perf_counter()
    try:
        run_engine(engine, read_events(args.files, counts, args.until), args.until, emit, counts)
    finally:
        out.flush()
        for handle in (flags_file, rejects_file):
            if handle is not None:
                handle.close()
    elapsed = time.perf_counter() - started
    clock = engine.clock.isoformat().replace("+00:00", "Z") if engine.clock else "none"
    print(
        f"replayed {counts.lines} lines: {counts.events} events, {counts.duplicates} duplicates, "
        f"{counts.rejected} rejected; decisions: {counts.decisions['close_line']} close_line, "
        f"{counts.decisions['restore_eligibility']} restore_eligibility"
        f"{_retracted(counts)}; {counts.flags} flags; "
        f"{engine.user_count} users; clock {clock}; {elapsed:.2f}s "
        f"({counts.events / elapsed if elapsed else 0:,.0f} events/s); policy {policy.version}"
        + "".join(f"; {note}" for note in notes(counts, engine.waiting_count, args.until)),
        file=sys.stderr,
    )
    return 0


def _retracted(counts: Counts) -> str:
    retracted = counts.decisions["close_line_retracted"]
    return f", {retracted} close_line_retracted" if retracted else ""


def notes(counts: Counts, waiting: int, until: datetime | None) -> list[str]:
    """What a backtest must not miss: late events, state caps, events still waiting."""
    lines = []
    if counts.late:
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.late.items()))
        lines.append(f"{sum(counts.late.values())} late events ({detail}), applied and corrected")
    if counts.cap_drops:
        detail = ", ".join(f"{what} {n}" for what, n in sorted(counts.cap_drops.items()))
        lines.append(
            f"state caps dropped {sum(counts.cap_drops.values())} items ({detail}): a dropped "
            "bill can hide a serious overdue"
        )
    if waiting and until is None:
        lines.append(f"{waiting} events wait for a deadline's grace (pass --until to flush)")
    return lines
