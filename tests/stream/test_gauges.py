"""The gauges the timer refreshes never fail because a rebalance revoked a partition the
batch loop still holds (aiokafka asserts on an unassigned partition's high watermark)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition

from tests.core.scenario import POLICY
from workers.core.engine import Engine
from workers.metrics import Metrics
from workers.settings import Settings
from workers.stream.ordering import TimeOrder
from workers.stream.partitions import Partition
from workers.stream.processor import Processor
from workers.stream.store import MemoryStore


class RevokedConsumer:
    """A consumer whose assignment no longer holds the partitions asked about."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned

    def highwater(self, tp: TopicPartition) -> int | None:
        assert tp in self.assigned, "Partition is not assigned"
        return 10

    def last_poll_timestamp(self, tp: TopicPartition) -> int | None:
        assert tp in self.assigned, "Partition is not assigned"
        return None


def _processor(consumer: Any) -> Processor:
    settings = Settings(partitions=2)
    processor = Processor(settings, POLICY, Metrics(), consumer, None, None)
    for number in (0, 1):
        order = TimeOrder(settings.topics.consumed(), settings.align_wait_ms)
        processor.partitions[number] = Partition(number, Engine(POLICY), MemoryStore(number), order)
    return processor


def test_gauges_skip_partitions_a_rebalance_revoked() -> None:
    topics = Settings().topics.consumed()
    processor = _processor(RevokedConsumer({TopicPartition(t, 1) for t in topics}))
    processor.refresh_gauges(datetime(2026, 3, 1, tzinfo=UTC))  # no AssertionError
    _, message_lag = processor.metrics.partition(0)
    assert message_lag._value.get() == 0
