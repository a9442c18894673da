"""Offer simulated traffic to the Kafka input topics at a fixed rate (open loop).

Open loop: record ``i`` is due at ``started + i / rate`` whatever the consumers do, so a
slow worker sees a growing backlog, not a politely slower producer. Each record goes to
the topic of its event type, keyed by ``user_id``. Topics, partition count and connection
security come from the worker's settings (``LINEGUARD_*``), so the traffic lands where
the worker reads. When the producer itself cannot keep up, it sends as fast as it can
and reports how far behind the schedule it ended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from workers.settings import Settings, Topics
from workers.sim.generator import WireRecord


@dataclass
class SendReport:
    records: int = 0
    elapsed_seconds: float = 0.0
    behind_seconds: float = 0.0
    """How late the last record left compared with its schedule."""

    @property
    def achieved_rate(self) -> float:
        return self.records / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


def topic_for(topics: Topics) -> dict[str, str]:
    """Event type -> input topic."""
    return {event_type: topic for topic, event_type in topics.inputs().items()}


async def offer(
    records: Iterable[WireRecord],
    settings: Settings,
    rate: float,
    *,
    on_progress: Callable[[SendReport], None] | None = None,
    linger_ms: int = 5,
) -> SendReport:
    """Send every record at ``rate`` records per second; waits for all acknowledgements.

    Missing topics are created first, as the worker would create them (``settings``).
    """
    # Imported here: the generator and the evaluation must not need a Kafka client.
    from aiokafka import AIOKafkaProducer

    from workers.stream.clients import connection_options, prepare_topics

    await prepare_topics(settings)
    routes = topic_for(settings.topics)
    producer = AIOKafkaProducer(**connection_options(settings), linger_ms=linger_ms, acks=1)
    await producer.start()
    report = SendReport()
    pending: list[asyncio.Future[object]] = []
    try:
        started = time.monotonic()
        last_progress = started
        for record in records:
            due = started + report.records / rate
            now = time.monotonic()
            if due > now + 0.001:
                await asyncio.sleep(due - now)
            pending.append(
                await producer.send(
                    routes[record.event_type], record.value, key=record.user_id.encode()
                )
            )
            report.records += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
            if on_progress is not None and now - last_progress >= 0.5:
                last_progress = now
                report.elapsed_seconds = now - started
                on_progress(report)
        await asyncio.gather(*pending)
        finished = time.monotonic()
        report.elapsed_seconds = finished - started
        report.behind_seconds = max(0.0, finished - (started + report.records / rate))
    finally:
        await producer.stop()
    return report
