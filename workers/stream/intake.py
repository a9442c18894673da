"""A fetched batch into the partitions' time orders: records decoded at the edge, held to
the time bounds, and bad ones (or ones the core failed on before) kept as dead letters."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from schemas.control import OverrideRecord
from schemas.events import Event
from workers.codec import Placement, Rejected, decode, decode_overrides
from workers.settings import Settings

if TYPE_CHECKING:
    from workers.stream.partitions import Partition

RecordKey = tuple[str, int, int]  # topic, partition, offset


def decode_batch(
    batch: dict[Any, list[Any]],
    partitions: dict[int, Partition],
    settings: Settings,
    poison: dict[RecordKey, str],
    now: datetime,
    dead: list[tuple[Any, Rejected]],
) -> int:
    """Decode ``batch`` into each partition's time order, rejected records into ``dead``
    (a record in ``poison`` as an ``internal`` dead letter). Returns the records read."""
    input_types = settings.topics.inputs()
    count = 0
    received_ms = int(time.time() * 1000)
    latest = now + timedelta(seconds=settings.max_future_skew_seconds)
    for tp, records in batch.items():
        part = partitions.get(tp.partition)
        if part is None:
            continue  # revoked while the batch was in flight; re-read by the new owner
        topic, order = tp.topic, part.order
        expected = input_types.get(topic)  # None: the overrides topic
        clock = part.engine.clock
        placement = Placement(tp.partition, settings.partitions, settings.partitioner)
        count += len(records)
        for record in records:
            poisoned = poison.get((topic, tp.partition, record.offset))
            result: Event | OverrideRecord | Rejected
            if poisoned is not None:
                result = Rejected("internal", poisoned)
            elif expected is None:
                result = decode_overrides(record.value, record.key, record.timestamp, placement)
            else:
                result = decode(record.value, record.key, expected, placement)
            if not isinstance(result, Rejected):
                result = within_time_bounds(result, settings, now, latest, clock)
            if isinstance(result, Rejected):
                dead.append((record, result))
                order.skip(topic, record.offset)
            else:
                order.add(topic, record.offset, result, received_ms, record)
    return count


def within_time_bounds(
    event: Event | OverrideRecord,
    settings: Settings,
    now: datetime,
    latest: datetime,
    clock: datetime | None,
) -> Event | OverrideRecord | Rejected:
    """No real event (or override change) comes from the future, even when history is
    replayed; one far older than the partition's clock would reopen settled history."""
    name, moment = (
        ("changed_at", event.changed_at)
        if isinstance(event, OverrideRecord)
        else ("occurred_at", event.occurred_at)
    )
    if moment > latest:
        return Rejected(
            "from_the_future",
            f"{name} {moment.isoformat()} is more than "
            f"{settings.max_future_skew_seconds:g} s after wall time {now.isoformat()}",
        )
    if clock is not None and moment < clock - timedelta(days=settings.max_age_days):
        return Rejected(
            "too_old",
            f"{name} {moment.isoformat()} is more than "
            f"{settings.max_age_days:g} days before the partition's clock {clock.isoformat()}",
        )
    return event
