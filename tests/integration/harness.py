"""Real processes on a real (embedded) broker: worker processes, a plain producer and consumer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import Event, event_to_json
from workers.settings import Settings, Topics
from workers.stream.clients import connection_options, prepare_topics
from workers.stream.worker_process import WorkerProcess

TOPICS = Topics()
TOPIC_OF_TYPE = {event_type: topic for topic, event_type in TOPICS.inputs().items()}
REPO = Path(__file__).resolve().parents[2]
STATUS_TOKEN = "test-status-token-0123456789"


def worker_process(
    bootstrap: str, directory: Path, name: str = "worker", partitions: int = 4, **settings: str
) -> WorkerProcess:
    """A worker with the tests' defaults: event clock, short sessions, JSON logs, a status
    token (``WorkerProcess.get`` sends it)."""
    defaults = {
        "partitions": str(partitions),
        "clock": "event",
        "session_timeout_seconds": "3",
        "heartbeat_interval_seconds": "0.5",
        "tick_interval_seconds": "0.5",
        "log_format": "json",
        "status_token": STATUS_TOKEN,
    }
    return WorkerProcess(bootstrap, directory, name, **{**defaults, **settings})


async def produce(
    bootstrap: str,
    records: Iterable[Event | tuple[str, bytes | None, bytes]],
    settings: Settings | None = None,
) -> list[Any]:
    """Send events (to their type's topic, keyed by user) or raw (topic, key, value) triples.

    ``settings``: connect with their brokers and security (TLS) instead of ``bootstrap``."""
    producer = AIOKafkaProducer(**_connection(bootstrap, settings), linger_ms=5)
    await producer.start()
    try:
        futures = []
        for item in records:
            if isinstance(item, tuple):
                topic, key, value = item
            else:
                topic, key, value = (
                    TOPIC_OF_TYPE[item.type],
                    item.user_id.encode(),
                    event_to_json(item),
                )
            futures.append(await producer.send(topic, value, key=key))
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[list[Any]], bool],
    timeout: float = 60.0,
    settings: Settings | None = None,
) -> list[Any]:
    """Every record of ``topic`` from the beginning, once ``until(records)`` holds."""
    consumer = AIOKafkaConsumer(**_connection(bootstrap, settings), fetch_max_wait_ms=100)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: condition not met in {timeout} s ({len(records)})")
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


def _connection(bootstrap: str, settings: Settings | None) -> dict[str, Any]:
    if settings is None:
        return {"bootstrap_servers": bootstrap}
    return connection_options(settings)


async def create_topics(bootstrap: str, partitions: int = 4) -> None:
    """The worker's topics, before anything is produced (the broker would auto-create them)."""
    await prepare_topics(Settings(brokers=[bootstrap], partitions=partitions))


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(0.1)


def decoded(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in records]
