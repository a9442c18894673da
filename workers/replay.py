"""``lineguard replay``: run the decision core over JSON-lines event files (a backtest).

Events apply in file order with the clock at the largest ``occurred_at`` seen so far; then
the clock advances to ``--until`` (inclusive) so time-triggered rules fire. ``--overrides``
adds per-user override changes, each applied at its time. Decisions go to
stdout as JSON lines in the order made; flags and rejected lines to the named files.
``--challenger`` runs a second policy in lockstep (its outputs to ``--shadow``) and counts
where the two policies' closures disagree.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from schemas.control import OverrideRecord
from schemas.events import Event
from schemas.outputs import Decision, Flag, Output, Rejection
from workers.core.challenger import disagreements
from workers.core.engine import Engine
from workers.core.policy import Policy, load_policy
from workers.decoding import Rejected, decode_event, decode_override
from workers.errors import PolicyError
from workers.inputs import Source, open_output, read_lines, source, sources, total_size
from workers.problems import Problem, at_least
from workers.progress import Meter, meter, wanted
from workers.progress import add_option as add_progress_option

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
    override_changes: int = 0


@dataclass
class Shadow:
    """A challenger engine run in lockstep with the live one: it gets every event, override
    change and clock advance right after the live engine (but not the live engine's policy
    switches); its outputs go to ``emit`` and the closures where the two policies disagree
    are added up in ``disagreements``."""

    engine: Engine
    emit: Callable[[Output], None]
    disagreements: Counter[tuple[str, str]] = field(default_factory=Counter)

    def follow(self, live: Engine, live_outputs: list[Output], outputs: list[Output]) -> None:
        """Take the challenger's ``outputs`` of the step whose live outputs were
        ``live_outputs``."""
        for output in outputs:
            self.emit(output)
        if live_outputs or outputs:  # most steps output nothing: nothing to compare
            self.disagreements += disagreements(live, self.engine, live_outputs, outputs)

    def summary(self) -> str:
        """``challenger disagreements: KIND CODE N, ...`` (or ``none``), in sorted order."""
        found = sorted(self.disagreements.items())
        detail = ", ".join(f"{kind} {code} {n}" for (kind, code), n in found)
        return f"challenger disagreements: {detail or 'none'}"


def run_engine(
    engine: Engine,
    events: Iterable[Event | Rejection],
    until: datetime | None,
    emit: Callable[[Output | Rejection], None],
    counts: Counts,
    switches: Sequence[tuple[datetime, Policy]] = (),
    overrides: Sequence[OverrideRecord] = (),
    shadow: Shadow | None = None,
) -> None:
    """Feed events through ``engine``, then advance to ``until``; every output goes to ``emit``.

    ``switches``: ``(time, policy)`` pairs; the engine switches to ``policy`` once the
    clock reaches ``time``, as a worker does between batches at that partition clock (the
    clock is first advanced to ``time``, so deadlines due by then fire under the old one).
    ``overrides``: override changes, each applied at its ``changed_at``, before the first
    event dated after it (after the events dated at the same instant), as a worker applies
    the records of ``lineguard.overrides`` in time order with the events.
    ``shadow``: a challenger that follows every step of ``engine`` but its policy switches."""
    pending = sorted(switches, key=first)
    changes = sorted(overrides, key=changed_at)
    for number, item in enumerate(events, start=1):
        if until is not None and not isinstance(item, Rejection) and item.occurred_at > until:
            item = after_until("<events>", number, item, until)
        if isinstance(item, Rejection):
            counts.rejected += 1
            emit(item)
            continue
        _catch_up(engine, pending, changes, item.occurred_at, emit, counts, shadow)
        step = engine.apply(item)
        counts.events += 1
        counts.duplicates += step.duplicate
        for output in step.outputs:
            emit(output)
        if shadow is not None:
            shadow.follow(engine, step.outputs, shadow.engine.apply(item).outputs)
    _catch_up(engine, pending, changes, until, emit, counts, shadow, inclusive=True)
    if until is not None:
        outputs = engine.advance(until, final=True)
        for output in outputs:
            emit(output)
        if shadow is not None:
            shadow.follow(engine, outputs, shadow.engine.advance(until, final=True))
    drops, late = engine.take_counts()
    counts.cap_drops += drops
    counts.late += late


def _catch_up(
    engine: Engine,
    switches: list[tuple[datetime, Policy]],
    changes: list[OverrideRecord],
    before: datetime | None,
    emit: Callable[[Output | Rejection], None],
    counts: Counts,
    shadow: Shadow | None = None,
    *,
    inclusive: bool = False,
) -> None:
    """Apply the policy switches and override changes dated before ``before`` (at or
    before, with ``inclusive``; None: all of them), in time order (a switch first). The
    ``shadow`` follows the clock advance of a switch (not the switch) and every change."""

    def due(moment: datetime) -> bool:
        return before is None or moment < before or (inclusive and moment == before)

    while True:
        switch_at = switches[0][0] if switches and due(switches[0][0]) else None
        change_at = changes[0].changed_at if changes and due(changes[0].changed_at) else None
        if switch_at is not None and (change_at is None or switch_at <= change_at):
            outputs = _switch(engine, *switches.pop(0), emit)
            if shadow is not None:
                shadow.follow(engine, outputs, shadow.engine.advance(switch_at))
        elif change_at is not None:
            change = changes.pop(0)
            step = engine.apply_overrides(change)
            counts.override_changes += 1
            for output in step.outputs:
                emit(output)
            if shadow is not None:
                shadow.follow(engine, step.outputs, shadow.engine.apply_overrides(change).outputs)
        else:
            return


def changed_at(record: OverrideRecord) -> datetime:
    return record.changed_at


def _switch(
    engine: Engine, at: datetime, policy: Policy, emit: Callable[[Output | Rejection], None]
) -> list[Output]:
    """Advance ``engine`` to ``at``, then switch it to ``policy``; returns what fired."""
    outputs = engine.advance(at)
    for output in outputs:
        emit(output)
    engine.set_policy(policy)
    return outputs


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
    events: Iterable[Event],
    policy: Policy,
    until: datetime | None = None,
    switches: Sequence[tuple[datetime, Policy]] = (),
    overrides: Sequence[OverrideRecord] = (),
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

    engine = Engine(policy, live_users=OFFLINE_LIVE_USERS)
    run_engine(engine, events, until, collect, counts, switches, overrides)
    result.events, result.duplicates = counts.events, counts.duplicates
    return result


def read_events(
    paths: Iterable[Source | Path],
    counts: Counts,
    until: datetime | None = None,
    meter: Meter | None = None,
) -> Iterator[Event | Rejection]:
    """Events from JSON-lines files (``-``: standard input; gzip read transparently); blank
    lines skipped, bad lines (and events dated after ``until``) become rejections."""
    for each in paths:
        checked = each if isinstance(each, Source) else source(each)
        on_bytes = None if meter is None else meter.advance
        for number, line in read_lines(checked, on_bytes):
            if not line.strip():
                continue
            counts.lines += 1
            if meter is not None:
                meter.count()
            decoded = decode_event(line)
            if isinstance(decoded, Rejected):
                yield Rejection(
                    file=checked.name,
                    line=number,
                    error_kind=decoded.error_kind,
                    reason=decoded.error,
                )
            elif until is not None and decoded.occurred_at > until:
                yield after_until(checked.name, number, decoded, until)
            else:
                yield decoded


def read_overrides(
    path: Path, until: datetime | None = None
) -> tuple[list[OverrideRecord], list[Rejection]]:
    """Override changes from a JSON-lines file of ``OverrideRecord``s (an empty list of
    overrides removes them all, as a tombstone does on the topic); bad lines, and changes
    dated after ``until``, become rejections."""
    records: list[OverrideRecord] = []
    rejected: list[Rejection] = []
    checked = source(path)
    for number, line in read_lines(checked, None):
        if not line.strip():
            continue
        decoded = decode_override(line)
        if isinstance(decoded, Rejected):
            rejected.append(
                Rejection(
                    file=checked.name,
                    line=number,
                    error_kind=decoded.error_kind,
                    reason=decoded.error,
                )
            )
        elif until is not None and decoded.changed_at > until:
            rejected.append(
                Rejection(
                    file=checked.name,
                    line=number,
                    error_kind="after_until",
                    reason=f"changed_at {decoded.changed_at.isoformat()} is after --until "
                    f"{until.isoformat()}",
                )
            )
        else:
            records.append(decoded)
    return records, rejected


def parse_moment(text: str) -> datetime:
    try:
        return _MOMENT.validate_python(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 timestamp with an offset (e.g. 2026-06-30T00:00:00Z)"
        ) from exc


def policy_switch(text: str) -> tuple[datetime, Policy]:
    """``TIME=FILE`` for ``--policy-at``."""
    moment, sep, file = text.partition("=")
    if not sep or not file:
        raise argparse.ArgumentTypeError(f"{text!r} is not TIME=FILE")
    try:
        return parse_moment(moment), load_policy(file)
    except PolicyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="JSON-lines events; '-' reads standard input; gzip is read transparently",
    )
    parser.add_argument(
        "--until", type=parse_moment, help="advance the clock to this time (inclusive) at the end"
    )
    parser.add_argument("--policy", type=Path, help="policy TOML file (default: packaged policy)")
    parser.add_argument(
        "--policy-at",
        dest="policy_at",
        type=policy_switch,
        action="append",
        default=[],
        metavar="TIME=FILE",
        help="switch to the policy in FILE once the clock reaches TIME, as the workers did "
        "(their log records each switch's partition clocks); repeatable",
    )
    parser.add_argument(
        "--overrides",
        type=Path,
        metavar="FILE",
        help="per-user override changes (JSON lines of override records, as on the "
        "lineguard.overrides topic), each applied at its changed_at",
    )
    parser.add_argument(
        "--challenger",
        type=Path,
        metavar="FILE",
        help="also run the policy in FILE as a challenger, in lockstep with the live one over "
        "the same events (--policy-at switches only the live one); the closures where the two "
        "disagree are counted on stderr",
    )
    parser.add_argument(
        "--shadow",
        type=Path,
        metavar="OUT",
        help="write the challenger's decisions and flags as JSON lines to OUT (needs --challenger)",
    )
    parser.add_argument("--flags", type=Path, help="write flags as JSON lines to this file")
    parser.add_argument("--rejects", type=Path, help="write rejected lines as JSON lines here")
    parser.add_argument(
        "--live-users",
        type=at_least(1),
        default=OFFLINE_LIVE_USERS,
        help="user states kept as live objects; the rest are held serialised (less memory, "
        f"slower) (default {OFFLINE_LIVE_USERS:,})",
    )

    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    if args.shadow is not None and args.challenger is None:
        raise Problem("--shadow writes the challenger's outputs: give --challenger FILE too")
    policy = load_policy(args.policy)
    challenger = None if args.challenger is None else load_policy(args.challenger)
    checked = sources(args.files)
    with ExitStack() as stack:
        flags_file = None if args.flags is None else open_output(args.flags, stack)
        rejects_file = None if args.rejects is None else open_output(args.rejects, stack)
        shadow_file = None if args.shadow is None else open_output(args.shadow, stack)
        with meter("replay", total_size(checked), wanted(args.progress)) as bar:
            files = (flags_file, rejects_file, shadow_file)
            summary = _replay(args, policy, challenger, checked, bar, *files)
    print(summary, file=sys.stderr)
    return 0


def _replay(
    args: argparse.Namespace,
    policy: Policy,
    challenger: Policy | None,
    checked: list[Source],
    bar: Meter,
    flags_file: IO[bytes] | None,
    rejects_file: IO[bytes] | None,
    shadow_file: IO[bytes] | None,
) -> str:
    """Run the replay, writing its outputs; returns the summary (one line, and the
    challenger's disagreements on a second line with a challenger)."""
    counts = Counts()
    out = sys.stdout.buffer

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

    def emit_shadow(output: Output) -> None:
        if shadow_file is not None:
            shadow_file.write(output.model_dump_json().encode() + b"\n")

    engine = Engine(policy, live_users=args.live_users)
    shadow = None if challenger is None else Shadow(engine.fork(challenger), emit_shadow)
    changes: list[OverrideRecord] = []
    if args.overrides is not None:
        changes, refused = read_overrides(args.overrides, args.until)
        for rejection in refused:
            counts.rejected += 1
            emit(rejection)
    started = time.perf_counter()
    try:
        events = read_events(checked, counts, args.until, bar)
        run_engine(engine, events, args.until, emit, counts, args.policy_at, changes, shadow)
    finally:
        out.flush()
    elapsed = time.perf_counter() - started
    clock = engine.clock.isoformat().replace("+00:00", "Z") if engine.clock else "none"
    extra = notes(counts, engine.waiting_count, args.until)
    if counts.rejected and rejects_file is None:
        extra.append(f"{counts.rejected} rejected lines not kept: pass --rejects FILE")
    return (
        f"replayed {counts.lines} lines: {counts.events} events, {counts.duplicates} duplicates, "
        f"{counts.rejected} rejected; decisions: {counts.decisions['close_line']} close_line, "
        f"{counts.decisions['restore_eligibility']} restore_eligibility"
        f"{_retracted(counts)}; {counts.flags} flags; "
        f"{engine.user_count} users; clock {clock}; {elapsed:.2f}s "
        f"({counts.events / elapsed if elapsed else 0:,.0f} events/s); policy {policy.version}"
        + "".join(f" then {p.version} at {iso_z(t)}" for t, p in sorted(args.policy_at, key=first))
        + (f"; {counts.override_changes} override changes" if args.overrides else "")
        + ("" if challenger is None else f"; challenger {challenger.version}")
        + "".join(f"; {note}" for note in extra)
        + ("" if shadow is None else "\n" + shadow.summary())
    )


def first(switch: tuple[datetime, Policy]) -> datetime:
    return switch[0]


def iso_z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


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
