"""Writing one batch's results: outputs and dead letters acknowledged first, then each
changed user's state to the changelog, then the local store.

Nothing is written to the changelog before every output it depends on is acknowledged, so
a state in the changelog never records an input whose outputs were not sent. Once the store
has every changed state, an engine whose store holds states forgets the ones it kept as
bytes (they are read back on demand).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from schemas.outputs import Decision, Output
from workers.codec import Rejected, dead_letter_record, encode_output
from workers.settings import Topics
from workers.stream.changelog import send_changelog

if TYPE_CHECKING:
    from workers.stream.partitions import Partition, PartitionSet

Outputs = list[tuple[int, Output, int]]
"""(partition number, output, wall ms when its trigger was received)."""


async def send_batch(
    producer: Any,
    topics: Topics,
    outputs: Outputs,
    dead: list[tuple[Any, Rejected]],
    parts: PartitionSet,
    dead_letter_max_bytes: int,
) -> float:
    """Send and await everything the batch produced; returns when the outputs were acked
    (wall seconds), for the latency histogram."""
    send = producer.send
    pending = []
    for number, output, _ in outputs:
        if output.policy_role == "challenger":
            topic = topics.shadow_decisions
        else:
            topic = topics.decisions if isinstance(output, Decision) else topics.flags
        key = output.user_id.encode()
        pending.append(await send(topic, encode_output(output), key=key, partition=number))
    for record, rejected in dead:
        letter = dead_letter_record(rejected, record, dead_letter_max_bytes)
        pending.append(
            await send(
                topics.dead_letter,
                letter.value,
                key=letter.key,
                partition=record.partition,
                headers=letter.headers,
            )
        )
    if pending:
        await asyncio.gather(*pending)
    acked = time.time()

    changelog: list[tuple[Partition, dict[str, bytes], list[Any]]] = []
    for part in parts.partitions.values():
        dirty = part.engine.take_dirty()
        if dirty:
            futures = await send_changelog(producer, topics.changelog, part.number, dirty)
            changelog.append((part, dirty, futures))
    # Every partition's sends are awaited, even when one fails: none is left unobserved.
    outcomes = await asyncio.gather(
        *(future for _, _, futures in changelog for future in futures), return_exceptions=True
    )
    failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failed is not None:
        raise failed
    for part, dirty, futures in changelog:
        offset = max(ack.offset + count for ack, count in (f.result() for f in futures))
        part.store.write(dirty, offset, part.engine.pending)
    for part in parts.partitions.values():
        part.engine.drop_cold()  # a store that holds states has them all now
    return acked
