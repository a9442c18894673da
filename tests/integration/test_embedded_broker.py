"""The embedded broker: the launcher, and the defects the worker is built around.

Each defect test pins the broker's current behaviour; if a newer broker fixes one, the
test fails and docs/streaming.md's list of limits needs the same update.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from workers.broker import EmbeddedBroker, metadata_probe

pytestmark = pytest.mark.integration


def test_the_launcher_starts_answers_and_stops() -> None:
    with EmbeddedBroker() as broker:
        assert broker.running()
        assert metadata_probe(broker.host, broker.port) == 1
        port = broker.port
    assert not broker.running()
    with pytest.raises(OSError):
        metadata_probe("127.0.0.1", port, timeout=0.5)


async def test_list_offsets_under_reports_the_end_but_fetch_high_watermark_is_right(
    broker: EmbeddedBroker,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
    await producer.start()
    try:
        sends = [await producer.send("probe", b"x", key=b"k", partition=0) for _ in range(10)]
        await asyncio.gather(*sends)  # one batch of ten records
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tp = TopicPartition("probe", 0)
        listed = (await consumer.end_offsets([tp]))[tp]
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records = []
        while consumer.highwater(tp) is None or len(records) < 10:
            records += (await consumer.getmany(tp, timeout_ms=100)).get(tp, [])
    finally:
        await consumer.stop()
    assert consumer.highwater(tp) == 10  # what the worker's restore relies on
    assert listed == 1  # ListOffsets(LATEST): base offset of the newest batch + 1


async def test_the_idempotent_producer_is_refused(broker: EmbeddedBroker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()
