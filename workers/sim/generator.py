"""The labelled population generator: a seeded, streaming source of events in time order.

Stable API (the demo and load tools use it)::

    config = SimulationConfig(users=10_000, days=180, seed=7)
    for event in generate(config): ...            # pydantic events, in occurred_at order
    for record in generate_records(config): ...   # (event_type, user_id, JSON bytes), faster
    for label in labels(config): ...              # what each user should trigger

Each user is built from its own random stream (``seed`` and the user's index), so a user's
history does not depend on the population size or on the other users. A population of
one batch (4,096 users) is sorted in memory; a larger one is built batch by batch, each
batch's events appended to temporary files by day (or group of days), which are then
sorted and emitted one at a time: memory holds one batch or one day of events, whatever
the population, and the files are removed when the iterator ends.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import NamedTuple, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.events import EVENT_ADAPTER, EVENT_TYPES, Event
from schemas.outputs import ReasonCode
from workers.sim.archetypes import ARCHETYPES, Archetype, Outcome
from workers.sim.timeline import DAY, Timeline, epoch, to_date, to_datetime

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)

DEFAULT_MIX: dict[str, float] = {"ordinary": 0.90} | {
    name: 0.01 for name in ARCHETYPES if name != "ordinary"
}
"""Shares of the population by archetype: ordinary borrowers are the large majority."""


class SimulationConfig(BaseModel):
    """What population to generate. The same config always yields the same events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users: int = Field(default=1_000, ge=1, le=99_999_999)
    days: int = Field(default=180, ge=3, le=3_650, description="Length of the simulated span.")
    start: datetime = Field(default=DEFAULT_START, description="Start of the span (aware).")
    seed: int = Field(default=0, ge=0, lt=2**32)
    mix: dict[str, float] | None = Field(
        default=None,
        description="Archetype name -> weight (normalised); None: DEFAULT_MIX without the "
        "archetypes that need a longer span than ``days``.",
    )
    duplicate_rate: float = Field(
        default=0.001, ge=0, le=0.5, description="Share of events delivered twice (same id)."
    )
    user_prefix: str = Field(default="u", max_length=40)

    @field_validator("start")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("start must carry an offset or Z")
        return value.astimezone(UTC).replace(microsecond=0)

    @model_validator(mode="after")
    def _mix_fits(self) -> Self:
        if self.mix is None:
            return self
        for name, weight in self.mix.items():
            archetype = ARCHETYPES.get(name)
            if archetype is None:
                raise ValueError(f"unknown archetype {name!r}; known: {', '.join(ARCHETYPES)}")
            if weight < 0:
                raise ValueError(f"weight of {name!r} must not be negative")
            if weight > 0 and archetype.min_days > self.days:
                raise ValueError(
                    f"archetype {name!r} needs a span of at least {archetype.min_days} days"
                )
        if sum(self.mix.values()) <= 0:
            raise ValueError("the mix needs at least one positive weight")
        return self

    @property
    def ends_at(self) -> datetime:
        """End of the span (exclusive): the natural ``--until`` of an evaluation."""
        return self.start + timedelta(days=self.days)

    def resolved_mix(self) -> dict[str, float]:
        """The mix actually used, normalised to shares that add up to 1."""
        if self.mix is not None:
            raw = {name: weight for name, weight in self.mix.items() if weight > 0}
        else:
            raw = dict(DEFAULT_MIX)
            for name in list(raw):
                if name != "ordinary" and ARCHETYPES[name].min_days > self.days:
                    raw["ordinary"] += raw.pop(name)
        total = sum(raw.values())
        return {name: weight / total for name, weight in raw.items()}


class Label(BaseModel):
    """The truth about one simulated user, one JSON line of the labels file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    archetype: str
    expected_reason: ReasonCode | None = Field(
        description="Reason code of the user's first closure under the default policy, or None."
    )
    expect_restore: bool = False
    behaviour_started_at: datetime | None = None
    traits: tuple[str, ...] = Field(default=(), description="Variant and near misses staged.")


class WireRecord(NamedTuple):
    """One event as it goes on the wire: its type (topic), key and JSON value."""

    event_type: str
    user_id: str
    value: bytes


_TYPE_CODES = {name: bytes([65 + index]) for index, name in enumerate(EVENT_TYPES)}
_TYPE_NAMES = {code[0]: name for name, code in _TYPE_CODES.items()}
_KEY_WIDTH = 11 + 8 + 5
BATCH_USERS = 4_096
MAX_BUCKETS = 256


class _Stamper:
    """Epoch seconds to RFC 3339 strings, caching the date part."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._times = [
            f"T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
            for second in range(DAY)
        ]

    def __call__(self, at: int) -> str:
        day, second = divmod(at, DAY)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = to_date(at).isoformat()
        return prefix + self._times[second]


def user_id_of(config: SimulationConfig, index: int) -> str:
    return f"{config.user_prefix}{index:08d}"


def _build_user(
    config: SimulationConfig, index: int, archetypes: list[Archetype], weights: list[float]
) -> tuple[Timeline, Outcome, Archetype]:
    rng = Random((config.seed << 40) | index)
    archetype = rng.choices(archetypes, cum_weights=weights)[0]
    starts_at = epoch(config.start)
    timeline = Timeline(user_id_of(config, index), rng, starts_at, starts_at + config.days * DAY)
    first_at = starts_at + rng.randrange(2 * DAY)
    return timeline, archetype.build(timeline, first_at), archetype


def _label(timeline: Timeline, outcome: Outcome, archetype: Archetype) -> Label:
    started = outcome.behaviour_started_at
    return Label(
        user_id=timeline.user_id,
        archetype=archetype.name,
        expected_reason=outcome.expected_reason,
        expect_restore=outcome.expect_restore,
        behaviour_started_at=None if started is None else to_datetime(started),
        traits=outcome.traits,
    )


def _users(config: SimulationConfig) -> Iterator[tuple[int, Timeline, Outcome, Archetype]]:
    mix = config.resolved_mix()
    archetypes = [ARCHETYPES[name] for name in mix]
    cumulative: list[float] = []
    for share in mix.values():
        cumulative.append((cumulative[-1] if cumulative else 0.0) + share)
    for index in range(config.users):
        yield (index, *_build_user(config, index, archetypes, cumulative))


def labels(config: SimulationConfig) -> Iterator[Label]:
    """Every user's label, in user order (builds the users but serialises nothing)."""
    for _, timeline, outcome, archetype in _users(config):
        yield _label(timeline, outcome, archetype)


def timeline_events(timeline: Timeline) -> list[Event]:
    """One built user's events in time order, validated (tests and one-user tooling)."""
    stamp = _Stamper()
    return [
        EVENT_ADAPTER.validate_python({**body, "occurred_at": stamp(at)})
        for at, _, body in sorted(timeline.records, key=lambda record: record[:2])
    ]


def _batches(
    config: SimulationConfig,
    on_label: Callable[[Label], None] | None,
    batch_users: int,
    bucket_seconds: int,
) -> Iterator[dict[int, list[bytes]]]:
    """Per batch of users, lines ``key + type code + JSON`` grouped by time bucket.

    The key (occurred_at, user index, order within the user) sorts as bytes.
    """
    stamp = _Stamper()
    starts_at = epoch(config.start)
    duplicate_rate = config.duplicate_rate
    buckets: dict[int, list[bytes]] = {}
    for index, timeline, outcome, archetype in _users(config):
        if on_label is not None:
            on_label(_label(timeline, outcome, archetype))
        draw = timeline.rng.random
        for at, sequence, body in timeline.records:
            body["occurred_at"] = stamp(at)
            line = b"%011d%08d%05d%s%s" % (
                at, index, sequence, _TYPE_CODES[str(body["type"])], orjson.dumps(body),
            )  # fmt: skip
            bucket = (at - starts_at) // bucket_seconds
            lines = buckets.get(bucket)
            if lines is None:
                lines = buckets[bucket] = []
            lines.append(line)
            if duplicate_rate and draw() < duplicate_rate:
                lines.append(line)
        if (index + 1) % batch_users == 0:
            yield buckets
            buckets = {}
    if buckets:
        yield buckets


def _ordered_lines(
    config: SimulationConfig,
    on_label: Callable[[Label], None] | None,
    spill_dir: Path | None,
    batch_users: int,
) -> Iterator[bytes]:
    """All lines in key order: sorted in memory for one batch, else spilled by time bucket.

    Each batch appends its lines to one file per bucket of days; the files are then read,
    sorted and emitted one bucket at a time, so memory holds one batch or one bucket.
    """
    if config.users <= batch_users:
        span = config.days * DAY
        lines = [
            line for batch in _batches(config, on_label, batch_users, span) for line in batch[0]
        ]
        lines.sort()
        yield from lines
        return
    bucket_seconds = DAY * -(-config.days // MAX_BUCKETS)
    with tempfile.TemporaryDirectory(dir=spill_dir) as name:
        directory = Path(name)
        filled: set[int] = set()
        for batch in _batches(config, on_label, batch_users, bucket_seconds):
            for bucket, lines in batch.items():
                with (directory / f"{bucket:05d}").open("ab") as handle:
                    handle.write(b"\n".join(lines) + b"\n")
                filled.add(bucket)
            del batch
        for bucket in sorted(filled):
            path = directory / f"{bucket:05d}"
            lines = path.read_bytes().split(b"\n")
            path.unlink()
            lines.pop()  # after the last newline
            lines.sort()
            yield from lines


def generate_records(
    config: SimulationConfig,
    *,
    on_label: Callable[[Label], None] | None = None,
    spill_dir: Path | None = None,
    batch_users: int = BATCH_USERS,
) -> Iterator[WireRecord]:
    """Every event as wire bytes, in ``occurred_at`` order (ties: user index, then order).

    ``on_label`` receives each user's label, in user order, as the user is built (all
    labels have been delivered before the first record of a spilled population).
    """
    prefix = config.user_prefix
    for line in _ordered_lines(config, on_label, spill_dir, batch_users):
        yield WireRecord(
            _TYPE_NAMES[line[_KEY_WIDTH]],
            f"{prefix}{line[11:19].decode()}",
            line[_KEY_WIDTH + 1 :],
        )


def generate(
    config: SimulationConfig,
    *,
    on_label: Callable[[Label], None] | None = None,
    spill_dir: Path | None = None,
) -> Iterator[Event]:
    """Every event as a validated contract model, in ``occurred_at`` order."""
    for record in generate_records(config, on_label=on_label, spill_dir=spill_dir):
        yield EVENT_ADAPTER.validate_json(record.value)
