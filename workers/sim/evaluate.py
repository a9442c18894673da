"""Score policies against a labelled population, through the same core as ``replay``.

The unit is the user. A user's *decided reason* is taken from the first ``close_line``
decision: the user's expected reason when that closure lists it, otherwise the first
reason listed. Precision of a reason = closures decided for it that were expected /
closures decided for it; recall = expected users closed for it / users expected.

What a policy decided comes either from running it over events (``run_policies``) or from
a dump of the decisions and flags it made (``read_outputs`` and ``dump_outcome``).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from schemas.events import Event
from schemas.outputs import REASON_CODES, Decision, Flag, Output, Rejection, parse_output
from workers.core.engine import Engine
from workers.core.policy import Policy
from workers.errors import InputError
from workers.inputs import Source, read_lines, source
from workers.progress import Meter
from workers.replay import OFFLINE_LIVE_USERS, Counts, read_events
from workers.sim.generator import Label

NONE = "none"
NOT_CLOSED = "not closed"
ROWS: tuple[str, ...] = (*REASON_CODES, NONE)
COLUMNS: tuple[str, ...] = (*REASON_CODES, NOT_CLOSED)


@dataclass
class PolicyOutcome:
    """What one policy decided over the population (first closure and restore per user)."""

    version: str
    first_close: dict[str, Decision] = field(default_factory=dict)
    first_restore: dict[str, Decision] = field(default_factory=dict)
    decisions: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)

    def collect(self, output: Output) -> None:
        if isinstance(output, Flag):
            self.flags[output.signal] += 1
            return
        self.decisions[output.decision] += 1
        chosen = self.first_close if output.decision == "close_line" else self.first_restore
        chosen.setdefault(output.user_id, output)


@dataclass(frozen=True)
class ReasonScore:
    true_positives: int
    decided: int
    expected: int

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.decided if self.decided else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.expected if self.expected else None


@dataclass(frozen=True)
class Closure:
    """A user closed by a policy, with the label it was judged against."""

    label: Label
    decision: Decision

    @property
    def reasons(self) -> list[str]:
        return [reason.code for reason in self.decision.reasons]


@dataclass
class RestoreScore:
    expected: int = 0
    restored_as_expected: int = 0
    days_to_eligibility: list[float] = field(default_factory=list)
    unexpected: Counter[str] = field(default_factory=Counter)
    """Archetype -> users made restore-eligible although their label did not expect it."""


@dataclass
class Scores:
    outcome: PolicyOutcome
    per_reason: dict[str, ReasonScore]
    confusion: Counter[tuple[str, str]]
    false_closures: list[Closure]
    missed: list[Label]
    latency_seconds: dict[str, list[float]]
    restore: RestoreScore
    users: int


def decided_reason(label: Label, decision: Decision | None) -> str:
    if decision is None:
        return NOT_CLOSED
    codes = [reason.code for reason in decision.reasons]
    return label.expected_reason if label.expected_reason in codes else codes[0]


def score(labels: dict[str, Label], outcome: PolicyOutcome) -> Scores:
    confusion: Counter[tuple[str, str]] = Counter()
    false_closures: list[Closure] = []
    missed: list[Label] = []
    latency: dict[str, list[float]] = {code: [] for code in REASON_CODES}
    restore = RestoreScore()
    for user_id, label in labels.items():
        closure = outcome.first_close.get(user_id)
        row = label.expected_reason or NONE
        column = decided_reason(label, closure)
        confusion[row, column] += 1
        if closure is not None and label.expected_reason is None:
            false_closures.append(Closure(label, closure))
        if label.expected_reason is not None and column != label.expected_reason:
            missed.append(label)
        if closure is not None and column == row and label.behaviour_started_at is not None:
            latency[row].append((closure.decided_at - label.behaviour_started_at).total_seconds())
        restored = outcome.first_restore.get(user_id)
        if label.expect_restore:
            restore.expected += 1
        if restored is not None and label.expect_restore and closure is not None:
            restore.restored_as_expected += 1
            waited = (restored.decided_at - closure.decided_at).total_seconds()
            restore.days_to_eligibility.append(waited / 86_400)
        elif restored is not None:
            restore.unexpected[label.archetype] += 1
    per_reason = {}
    for code in REASON_CODES:
        hits = confusion[code, code]
        decided = sum(confusion[row, code] for row in ROWS)
        expected = sum(confusion[code, column] for column in COLUMNS)
        per_reason[code] = ReasonScore(hits, decided, expected)
    return Scores(
        outcome, per_reason, confusion, false_closures, missed, latency, restore, len(labels)
    )


@dataclass(frozen=True)
class Comparison:
    """What changing the policy from ``before`` to ``after`` does to who gets closed."""

    newly_closed: list[Closure]
    no_longer_closed: list[Closure]


def compare(labels: dict[str, Label], before: PolicyOutcome, after: PolicyOutcome) -> Comparison:
    newly = [
        Closure(labels[user_id], decision)
        for user_id, decision in sorted(after.first_close.items())
        if user_id not in before.first_close and user_id in labels
    ]
    no_longer = [
        Closure(labels[user_id], decision)
        for user_id, decision in sorted(before.first_close.items())
        if user_id not in after.first_close and user_id in labels
    ]
    return Comparison(newly, no_longer)


def run_policies(
    events: Iterable[Event],
    policies: list[Policy],
    until: datetime | None,
    counts: Counts | None = None,
) -> list[PolicyOutcome]:
    """Feed each event once to one engine per policy, then advance them all to ``until``.

    ``counts`` (events applied, duplicates ignored) is updated from the first engine.
    """
    engines = [Engine(policy, live_users=OFFLINE_LIVE_USERS) for policy in policies]
    outcomes = [PolicyOutcome(policy.version) for policy in policies]
    pairs = list(zip(engines, outcomes, strict=True))
    counts = counts if counts is not None else Counts()
    for event in events:
        counts.events += 1
        for number, (engine, outcome) in enumerate(pairs):
            step = engine.apply(event)
            if number == 0:
                counts.duplicates += step.duplicate
            for output in step.outputs:
                outcome.collect(output)
    if until is not None:
        for engine, outcome in pairs:
            for output in engine.advance(until):
                outcome.collect(output)
    return outcomes


@dataclass
class DumpCounts:
    """What reading dumps of decisions and flags found."""

    records: int = 0
    duplicates: int = 0
    """Copies of a record already read (the same role and id), as Kafka redelivers."""
    invalid: int = 0
    """Lines that are not a valid flag or decision."""
    first_invalid: str | None = None
    """``FILE:LINE: why`` of the first invalid line."""
    after_until: int = 0
    """Records dated (``decided_at``, ``raised_at``) after ``until``, left out."""
    users: set[str] = field(default_factory=set)


def read_outputs(
    paths: Iterable[Source],
    counts: DumpCounts,
    until: datetime | None = None,
    meter: Meter | None = None,
) -> Iterator[Output]:
    """The flags and decisions of JSON-lines dumps (any ``policy_role``), in file order, each
    once: a record whose role, kind and id (``decision_id``, ``flag_id``) were already read
    is a redelivered copy. Lines that are not a valid output, and records dated after
    ``until``, are only counted."""
    seen: set[tuple[str, bool, str]] = set()
    for each in paths:
        on_bytes = None if meter is None else meter.advance
        for number, line in read_lines(each, on_bytes):
            if not line.strip():
                continue
            if meter is not None:
                meter.count()
            try:
                output = parse_output(line)
            except ValidationError as exc:
                counts.invalid += 1
                if counts.first_invalid is None:
                    error = exc.errors()[0]
                    where = ".".join(str(part) for part in error["loc"])
                    why = f"{where}: {error['msg']}" if where else error["msg"]
                    counts.first_invalid = f"{each.name}:{number}: {why}"
                continue
            if isinstance(output, Flag):
                key, dated = (output.policy_role, True, output.flag_id), output.raised_at
            else:
                key, dated = (output.policy_role, False, output.decision_id), output.decided_at
            if key in seen:
                counts.duplicates += 1
                continue
            seen.add(key)
            if until is not None and dated > until:
                counts.after_until += 1
                continue
            counts.records += 1
            counts.users.add(output.user_id)
            yield output


def dump_outcome(outputs: Iterable[Output]) -> PolicyOutcome:
    """What the policy of a dump decided. Its version is the records' ``policy_version``;
    a dump that spans a policy switch has several, named in the order first seen, joined
    by ``+`` (``default-2026.12+strict-1``); a dump without records is ``none``."""
    outcome = PolicyOutcome(NONE)
    versions: dict[str, None] = {}
    for output in outputs:
        versions.setdefault(output.policy_version)
        outcome.collect(output)
    if versions:
        outcome.version = "+".join(versions)
    return outcome


def read_labels(path: Path | Source) -> dict[str, Label]:
    """One label per user from a JSON-lines file (``-``: standard input; gzip transparently)."""
    labels: dict[str, Label] = {}
    checked = path if isinstance(path, Source) else source(path)
    for number, line in read_lines(checked):
        if not line.strip():
            continue
        try:
            label = Label.model_validate_json(line)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise InputError(f"{checked.name}:{number}: not a label: {reason}") from exc
        labels[label.user_id] = label
    return labels


def file_events(path: Path | Source, counts: Counts, meter: Meter | None = None) -> Iterator[Event]:
    """Valid events of a JSON-lines file (rejected lines are only counted)."""
    for item in read_events([path], counts, meter=meter):
        if isinstance(item, Rejection):
            counts.rejected += 1
        else:
            yield item


def users_seen(events: Iterable[Event], seen: set[str]) -> Iterator[Event]:
    """Pass ``events`` through, noting each event's user in ``seen``."""
    for event in events:
        seen.add(event.user_id)
        yield event


def overlap_warning(labels: dict[str, Label], seen: set[str]) -> str | None:
    """A warning when few or none of the labelled users appear in the events (the labels of
    another population score every risky user as missed), else None."""
    shared = sum(1 for user_id in labels if user_id in seen)
    if not labels or shared * 2 >= len(labels):
        return None
    if shared == 0:
        return (
            f"none of the {len(labels):,} labelled users appears in the events: "
            "are the labels from another population?"
        )
    return (
        f"only {shared:,} of the {len(labels):,} labelled users appear in the events: "
        "the others count as not closed; are the labels from another population?"
    )


def unlabelled_warning(labels: dict[str, Label], users: set[str]) -> str | None:
    """A warning when most of the users with decisions or flags have no label (the labels
    of another population), else None. (Users without any record are the rule: most
    ordinary users are never flagged.)"""
    unlabelled = sum(1 for user_id in users if user_id not in labels)
    if unlabelled * 2 <= len(users):
        return None
    return (
        f"{unlabelled:,} of the {len(users):,} users in the decisions have no label: "
        "are the labels from another population?"
    )


def summary(values: list[float]) -> tuple[float, float, float] | None:
    """Median, 90th percentile and maximum, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return statistics.median(ordered), p90, ordered[-1]
