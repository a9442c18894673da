"""Real processes on a real (embedded) broker: worker processes, a plain producer and consumer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, Event, event_to_json
from tests.core.scenario import login
from workers.core.policy import load_policy
from workers.replay import ReplayResult, replay_events
from workers.settings import Settings, Topics
from workers.sim.generator import SimulationConfig, WireRecord, generate_records
from workers.stream.clients import connection_options, prepare_topics
from workers.stream.routing import partition_for
from workers.stream.worker_process import WorkerProcess

TOPICS = Topics()
TOPIC_OF_TYPE = {event_type: topic for topic, event_type in TOPICS.inputs().items()}
REPO = Path(__file__).resolve().parents[2]
STATUS_TOKEN = "test-status-token-0123456789"


def lineguard(
    *args: str, bootstrap: str, partitions: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one ``lineguard`` command against the broker at ``bootstrap``."""
    env = {**os.environ, "LINEGUARD_BROKERS": bootstrap}
    if partitions is not None:
        env["LINEGUARD_PARTITIONS"] = str(partitions)
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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


def in_process_settings(bootstrap: str, directory: Path | str, partitions: int = 4) -> Settings:
    """Settings for a worker run in the test's own process (a ``StreamService``), with the
    same defaults as ``worker_process``: event clock, short sessions."""
    return Settings(
        brokers=[bootstrap],
        partitions=partitions,
        clock="event",
        session_timeout_seconds=3,
        heartbeat_interval_seconds=0.5,
        data_dir=str(directory),
    )


Raw = tuple[str, bytes | None, bytes] | tuple[str, bytes | None, bytes, int]
"""(topic, key, value), or (topic, key, value, partition) for an explicit partition."""


async def produce(
    bootstrap: str,
    records: Iterable[Event | Raw],
    settings: Settings | None = None,
    max_request_size: int = 1024 * 1024,
) -> list[Any]:
    """Send events (to their type's topic, keyed by user) or raw records; records larger
    than 1 MiB need a larger ``max_request_size``.

    ``settings``: connect with their brokers and security (TLS) instead of ``bootstrap``."""
    producer = AIOKafkaProducer(
        **_connection(bootstrap, settings), linger_ms=5, max_request_size=max_request_size
    )
    await producer.start()
    try:
        futures = []
        for item in records:
            partition = None
            if isinstance(item, tuple):
                topic, key, value, *explicit = item
                partition = explicit[0] if explicit else None
            else:
                topic, key, value = (
                    TOPIC_OF_TYPE[item.type],
                    item.user_id.encode(),
                    event_to_json(item),
                )
            futures.append(await producer.send(topic, value, key=key, partition=partition))
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


def share_partitions(*workers: WorkerProcess, each: int = 2) -> None:
    """Wait until every worker is ready and owns ``each`` partitions."""
    for worker in workers:
        worker.wait_ready()
    wait_for(
        lambda: all(len(worker.get("/readyz")[1]["partitions"]) == each for worker in workers),
        what=f"{each} partitions each",
    )


def decoded(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in records]


def simulated_population(partitions: int, users: int, days: int = 180) -> list[WireRecord]:
    """A simulated population in time order (seed 11), then one event per partition at the
    same last moment, so that every partition's event clock ends where replay's does."""
    records = list(generate_records(SimulationConfig(users=users, days=days, seed=11)))
    last = max(EVENT_ADAPTER.validate_json(r.value).occurred_at for r in records[-50:])
    final = last + timedelta(seconds=1)
    sentinels: dict[int, str] = {}
    for index in range(10_000):
        sentinels.setdefault(partition_for(f"clock-{index}", partitions), f"clock-{index}")
        if len(sentinels) == partitions:
            break
    for user_id in sentinels.values():
        item = login(final, "d", user=user_id)
        records.append(WireRecord("login", user_id, event_to_json(item)))
    return records


def replay_of(records: Iterable[WireRecord]) -> ReplayResult:
    """``lineguard replay`` over ``records`` (records that are not valid events are left
    out, as replay rejects them)."""
    events = []
    for record in records:
        try:
            events.append(EVENT_ADAPTER.validate_json(record.value))
        except ValidationError:
            continue
    return replay_events(events, load_policy(None))


def replayed(records: Iterable[WireRecord]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(decisions, flags) of ``lineguard replay`` over ``records``, as JSON objects."""
    result = replay_of(records)
    return (
        [decision.model_dump(mode="json") for decision in result.decisions],
        [flag.model_dump(mode="json") for flag in result.flags],
    )


def by_id(outputs: Iterable[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Outputs de-duplicated by id; an id seen with two different bodies fails."""
    seen: dict[str, dict[str, Any]] = {}
    for output in outputs:
        first = seen.setdefault(output[key], output)
        assert first == output, f"{key} {output[key]} published with two bodies"
    return seen
