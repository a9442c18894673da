"""Reading a changelog partition back: from a start offset up to the Fetch high watermark.

The end is taken from the high watermark of Fetch responses, never from ListOffsets:
the embedded broker under-reports ListOffsets(LATEST) whenever its newest batch holds
more than one record, which would stop a restore early and silently lose state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import TopicPartition

log = logging.getLogger(__name__)

OnRecords = Callable[[int, list[Any]], None]


async def read_to_end(
    consumer: Any,
    topic: str,
    starts: Mapping[int, int],
    on_records: OnRecords,
    poll_ms: int = 100,
    max_records: int = 20_000,
) -> dict[int, int]:
    """Feed ``on_records(partition, records)`` from each start offset to the high watermark.

    ``consumer`` is a group-less ``AIOKafkaConsumer``; returns each partition's end (the
    high watermark reached). An end below its start means the log was replaced (the
    broker lost it), and the caller must discard what it held.
    """
    positions = {TopicPartition(topic, partition): start for partition, start in starts.items()}
    if not positions:
        return {}
    consumer.assign(list(positions))
    for tp, start in positions.items():
        consumer.seek(tp, start)
    remaining = set(positions)
    ends: dict[int, int] = {}
    polls = 0
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=poll_ms, max_records=max_records)
        for tp, records in batch.items():
            if records:
                on_records(tp.partition, records)
        for tp in list(remaining):
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            if position >= highwater:
                # A position past the high watermark: the log is shorter than the start.
                ends[tp.partition] = min(position, highwater)
                remaining.discard(tp)
        polls += 1
        if polls % 100 == 0:
            log.info(
                "still restoring %s partitions %s", topic, sorted(p.partition for p in remaining)
            )
    consumer.assign([])
    return ends
