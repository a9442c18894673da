"""The policies topic on the brokers: create it, read its history, publish to it, and follow
it from a worker.

``lineguard.policies`` has one partition and is compacted (key: the role). A worker reads it
from the beginning at start-up and adopts the newest valid ``live`` record (else it keeps
the policy file's); afterwards the batch loop asks :meth:`PolicyFeed.poll` between batches,
so a switch happens at a batch boundary, never inside one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.control import PolicyRecord
from workers.core.policy import Policy
from workers.metrics import Metrics
from workers.policies import Adopted, History
from workers.settings import Settings
from workers.stream.clients import connection_options

log = logging.getLogger(__name__)

POLL_EVERY_SECONDS = 1.0
"""How often the batch loop looks for a newly published policy."""


async def ensure_topic(settings: Settings, create: bool = True) -> bool:
    """Whether the policies topic exists, creating it (one partition, compacted) if
    ``create``."""
    admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=10_000)
    await admin.start()
    try:
        if settings.topics.policies in set(await admin.list_topics()):
            return True
        if not create:
            return False
        topic = NewTopic(
            settings.topics.policies,
            1,
            settings.replication_factor,
            topic_configs={"cleanup.policy": "compact"},
        )
        with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
            await admin.create_topics([topic])
        return True
    finally:
        await admin.close()


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **connection_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )


class PolicyFeed:
    """Follows the policies topic: the history folded so far, and the live policy to run."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.history = History()
        self.tp = TopicPartition(settings.topics.policies, 0)
        self._consumer: AIOKafkaConsumer | None = None
        self._next_poll = 0.0
        self._read_up_to = 0

    async def start(self) -> None:
        """Create the topic if needed (and allowed), then read it to its end."""
        if not await ensure_topic(self.settings, self.settings.create_topics):
            log.warning(
                "not following published policies: topic %s is missing and topic creation "
                "is off (deploy/k8s/create-topics.sh creates it)",
                self.settings.topics.policies,
            )
            return
        consumer = self._consumer = _consumer(self.settings)
        await consumer.start()
        consumer.assign([self.tp])
        await consumer.seek_to_beginning(self.tp)
        while True:
            self._fold(await consumer.getmany(self.tp, timeout_ms=200))
            highwater = consumer.highwater(self.tp)
            if highwater is not None and await consumer.position(self.tp) >= highwater:
                break
        self._next_poll = time.monotonic() + POLL_EVERY_SECONDS

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    @property
    def live(self) -> Adopted | None:
        return self.history.current.get("live")

    @property
    def position(self) -> int:
        """The next offset of the policies topic this feed has not read."""
        return self._read_up_to

    @property
    def challenger(self) -> Adopted | None:
        return self.history.current.get("challenger")

    async def poll(self) -> set[str]:
        """The roles (``live``, ``challenger``) whose record changed since the last call
        (reads at most once per ``POLL_EVERY_SECONDS``, without waiting for the brokers);
        a live record is never withdrawn, a challenger can be."""
        consumer = self._consumer
        if consumer is None or time.monotonic() < self._next_poll:
            return set()
        self._next_poll = time.monotonic() + POLL_EVERY_SECONDS
        before = self.live, self.challenger
        self._fold(await consumer.getmany(self.tp, timeout_ms=0))
        changed = set()
        if self.live is not None and self.live is not before[0]:
            changed.add("live")
        if self.challenger is not before[1]:
            changed.add("challenger")
        return changed

    def _fold(self, batch: dict[Any, list[Any]]) -> None:
        for records in batch.values():
            for record in records:
                self._read_up_to = record.offset + 1
                outcome = self.history.add(record.offset, record.key, record.value)
                if isinstance(outcome, str):
                    log.warning(
                        "refused the policy record at offset %d: %s", record.offset, outcome
                    )
                    if self.metrics is not None:
                        self.metrics.policy_refused.inc()


async def read_history(settings: Settings) -> History:
    """Every record of the policies topic, folded (the topic is created if missing)."""
    feed = PolicyFeed(settings)
    await feed.start()
    await feed.stop()
    return feed.history


async def publish(settings: Settings, record: PolicyRecord) -> int:
    """Send ``record`` keyed by its role; returns its offset."""
    return await _send(settings, record.role, record.model_dump_json().encode())


async def withdraw(settings: Settings, role: str) -> int:
    """Send a tombstone under ``role`` (only the challenger can be withdrawn); its offset."""
    return await _send(settings, role, None)


async def _send(settings: Settings, role: str, value: bytes | None) -> int:
    await ensure_topic(settings)
    producer = AIOKafkaProducer(**connection_options(settings), acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            settings.topics.policies, value, key=role.encode(), partition=0
        )
        offset: int = sent.offset
        return offset
    finally:
        await producer.stop()


def starting_policy(feed: PolicyFeed | None, fallback: Policy) -> Policy:
    """The policy a worker starts with: the topic's live one, else the file's."""
    live = None if feed is None else feed.live
    return fallback if live is None else live.policy
