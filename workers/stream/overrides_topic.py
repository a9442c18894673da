"""The overrides topic on the brokers: read one user's current record, write a new one.

``lineguard.overrides`` is compacted and keyed by user id, co-partitioned with the inputs:
a user's records are on the partition their id maps to, in the order they were written.
The current record is the last one of the user's key up to the partition's end (None when
there is none, or when the last one is a tombstone).
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.control import OverrideRecord
from workers.decoding import Rejected, decode_override
from workers.settings import Settings
from workers.stream.clients import connection_options
from workers.stream.routing import partition_for


def partition_of(settings: Settings, user_id: str) -> int:
    return partition_for(user_id, settings.partitions, settings.partitioner)


async def read_current(settings: Settings, user_id: str) -> OverrideRecord | None:
    """The user's current override record: the last of its key on its partition."""
    tp = TopicPartition(settings.topics.overrides, partition_of(settings, user_id))
    key = user_id.encode()
    consumer = AIOKafkaConsumer(
        **connection_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        await consumer.seek_to_beginning(tp)
        current: bytes | None = None
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=500)
            for record in batch.get(tp, []):
                if record.key == key:
                    current = record.value
    finally:
        await consumer.stop()
    if current is None:
        return None
    decoded = decode_override(current)
    return None if isinstance(decoded, Rejected) else decoded


async def write(settings: Settings, record: OverrideRecord) -> tuple[int, int]:
    """Send the user's new full record, keyed by user id; returns (partition, offset)."""
    producer = AIOKafkaProducer(**connection_options(settings), acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            settings.topics.overrides,
            record.model_dump_json().encode(),
            key=record.user_id.encode(),
            partition=partition_of(settings, record.user_id),
        )
        return int(sent.partition), int(sent.offset)
    finally:
        await producer.stop()
