"""The changelog: writing changed users' state in record batches, and reading a partition
back from a start offset up to the Fetch high watermark.

The end is taken from the high watermark of Fetch responses, never from ListOffsets:
the embedded broker under-reports ListOffsets(LATEST) whenever its newest batch holds
more than one record, which would stop a restore early and silently lose state.
"""

from __future__ import annotations

import asyncio
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


async def send_changelog(
    producer: Any, topic: str, partition: int, dirty: dict[str, bytes]
) -> list[asyncio.Future[tuple[Any, int]]]:
    """Send one record per changed user, built straight into record batches (one send per
    batch, not per record). Each future yields (metadata of the batch's first record, the
    batch's record count), so the partition's new end is ``offset + count``."""
    futures: list[asyncio.Future[tuple[Any, int]]] = []

    async def ship(batch: Any, count: int) -> tuple[Any, int]:
        sent = await producer.send_batch(batch, topic, partition=partition)
        return await sent, count

    async def single(future: Any) -> tuple[Any, int]:
        return await future, 1

    batch, count = producer.create_batch(), 0
    for user_id, blob in dirty.items():
        key = user_id.encode()
        if batch.append(key=key, value=blob, timestamp=None) is not None:
            count += 1
            continue
        if count:  # full: ship it and start the next one
            futures.append(asyncio.ensure_future(ship(batch, count)))
            batch, count = producer.create_batch(), 0
            if batch.append(key=key, value=blob, timestamp=None) is not None:
                count += 1
                continue
        # A record larger than a whole batch goes on its own.
        sent = await producer.send(topic, blob, key=key, partition=partition)
        futures.append(asyncio.ensure_future(single(sent)))
    if count:
        futures.append(asyncio.ensure_future(ship(batch, count)))
    return futures
