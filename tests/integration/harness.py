"""Real processes on a real (embedded) broker: worker processes, a plain producer and consumer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import Event, event_to_json
from workers.broker import free_port
from workers.settings import Settings, Topics
from workers.stream.clients import prepare_topics

TOPICS = Topics()
TOPIC_OF_TYPE = {event_type: topic for topic, event_type in TOPICS.inputs().items()}
REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``lineguard worker`` as a child process with its own web port and log file."""

    def __init__(
        self,
        bootstrap: str,
        directory: Path,
        name: str = "worker",
        partitions: int = 4,
        **settings: str,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"{name}.log"
        self.env = {
            **os.environ,
            "LINEGUARD_BROKERS": bootstrap,
            "LINEGUARD_PARTITIONS": str(partitions),
            "LINEGUARD_CLOCK": "event",
            "LINEGUARD_WEB_PORT": str(self.port),
            "LINEGUARD_DATA_DIR": str(directory / f"{name}-data"),
            "LINEGUARD_SESSION_TIMEOUT_SECONDS": "3",
            "LINEGUARD_HEARTBEAT_INTERVAL_SECONDS": "0.5",
            "LINEGUARD_TICK_INTERVAL_SECONDS": "0.5",
            "LINEGUARD_LOG_FORMAT": "json",
            **{f"LINEGUARD_{key.upper()}": value for key, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def ready(self) -> bool:
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 45.0) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while not self.ready():
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready in {timeout} s: {self.log_tail()}")
            time.sleep(0.1)
        return self

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            text = response.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


async def produce(
    bootstrap: str, records: Iterable[Event | tuple[str, bytes | None, bytes]]
) -> list[Any]:
    """Send events (to their type's topic, keyed by user) or raw (topic, key, value) triples."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
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
) -> list[Any]:
    """Every record of ``topic`` from the beginning, once ``until(records)`` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
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


async def create_topics(bootstrap: str, partitions: int = 4) -> None:
    """The worker's topics, before anything is produced (the broker would auto-create them)."""
    await prepare_topics(Settings(brokers=[bootstrap], partitions=partitions))


def consumed(worker: WorkerProcess) -> float:
    """Input records the worker has consumed: valid events plus dead letters."""
    return sum(
        value
        for name, value in worker.metrics().items()
        if name.startswith(("lineguard_events_consumed_total", "lineguard_dead_letters_total"))
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(0.1)


def decoded(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in records]
