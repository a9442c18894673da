"""Live traffic decides exactly as replay: a population produced open loop while the worker
consumes, on the embedded broker, gives replay's decisions and flags (same ids, same bodies).

The producer is an ordinary aiokafka producer (murmur2, linger 5 ms) offering the six topics
in time order at a fixed rate, so the worker reads at the tail of the log while the topics
are being written, and each partition's topics reach it interleaved as the broker has them.
"""

from __future__ import annotations

import asyncio

import pytest

from schemas.events import EVENT_ADAPTER
from tests.integration.harness import (
    TOPICS,
    create_topics,
    decoded,
    read_topic,
    simulated_population,
    wait_for,
)
from workers.broker import EmbeddedBroker
from workers.core.policy import load_policy
from workers.replay import replay_events
from workers.settings import Settings
from workers.sim.producer import offer
from workers.stream.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USERS = 2_000
DAYS = 180
RATE = 16_000.0  # events/s offered, open loop


@pytest.mark.parametrize(
    "partitions,users,rate",
    [
        (2, USERS, RATE),  # faster than the worker here: it reads a growing backlog
        (3, USERS, RATE),
        (5, 400, 3_000.0),  # slower than the worker: it reads at the tail as topics are written
    ],
    ids=["2-partitions-16k", "3-partitions-16k", "5-partitions-3k-at-the-tail"],
)
async def test_live_open_loop_traffic_decides_exactly_as_replay(
    broker: EmbeddedBroker, workers: object, partitions: int, users: int, rate: float
) -> None:
    records = simulated_population(partitions, users, DAYS)
    expected = replay_events(
        [EVENT_ADAPTER.validate_json(r.value) for r in records], load_policy(None)
    )
    assert len(expected.decisions) > users // 15 and len(expected.flags) > users // 4

    await create_topics(broker.bootstrap, partitions)
    worker: WorkerProcess = workers(partitions=partitions).start().wait_ready()  # type: ignore[operator]
    settings = Settings(brokers=[broker.bootstrap], partitions=partitions)
    report = await offer(records, settings, rate)
    # Live, not a replay of a pre-filled log: the worker was deciding while producers wrote.
    # (The rate achieved is reported, never asserted: this machine is shared.)
    during = await asyncio.to_thread(worker.consumed)
    print(
        f"offered {rate:,.0f}/s, achieved {report.achieved_rate:,.0f}/s; "
        f"{during:,.0f} of {len(records):,} consumed when the producers finished"
    )
    assert during > 0

    # Every record consumed and committed: its outputs are acknowledged.
    await asyncio.to_thread(
        wait_for, lambda: worker.consumed() >= len(records), 120, "all records consumed"
    )
    decisions = decoded(
        await read_topic(
            broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= len(expected.decisions)
        )
    )
    flags = decoded(
        await read_topic(broker.bootstrap, TOPICS.flags, lambda r: len(r) >= len(expected.flags))
    )
    assert sorted(map(str, decisions)) == sorted(
        str(d.model_dump(mode="json")) for d in expected.decisions
    )
    assert sorted(map(str, flags)) == sorted(str(f.model_dump(mode="json")) for f in expected.flags)
