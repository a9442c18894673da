"""Simulated traffic lands in the input topics, one topic per event type, keyed by user id."""

from __future__ import annotations

from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer

from workers.broker import EmbeddedBroker
from workers.settings import Settings
from workers.sim.generator import SimulationConfig, generate_records
from workers.sim.producer import offer, topic_for

pytestmark = pytest.mark.integration


async def test_records_reach_the_topic_of_their_type_keyed_by_user() -> None:
    config = SimulationConfig(users=8, days=20, seed=5)
    records = list(generate_records(config))
    async with EmbeddedBroker() as broker:
        settings = Settings(brokers=[broker.bootstrap], partitions=2)
        report = await offer(records, settings, rate=5_000)
        assert report.records == len(records)
        routes = topic_for(settings.topics)
        consumer = AIOKafkaConsumer(
            *routes.values(), bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            received: list[tuple[str, bytes, bytes]] = []
            while len(received) < len(records):
                batches = await consumer.getmany(timeout_ms=2_000)
                assert batches, f"only {len(received)} of {len(records)} records arrived"
                for messages in batches.values():
                    received += [(m.topic, m.key, m.value) for m in messages]
        finally:
            await consumer.stop()
    expected = Counter((routes[r.event_type], r.user_id.encode(), r.value) for r in records)
    assert Counter(received) == expected
