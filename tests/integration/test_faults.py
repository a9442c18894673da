"""Faults as tests, on the embedded broker, while a simulated population is produced open loop:
workers killed and restarted, the group scaled 2 -> 1 -> 3, the broker stopped for 20 s,
a burst far above the worker's rate. Each ends with the stream's decisions and flags,
de-duplicated by id, equal to ``lineguard replay`` of the same input, and no id published
with two bodies. Where one worker saw the whole input, its metrics must add up: every record
committed is an event applied (duplicates included) or a dead letter.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.harness import (
    TOPICS,
    by_id,
    create_topics,
    decoded,
    read_topic,
    replay_of,
    replayed,
    simulated_population,
    wait_for,
)
from workers.broker import EmbeddedBroker
from workers.settings import Settings
from workers.sim.generator import WireRecord
from workers.sim.producer import offer
from workers.stream.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Workers = Callable[..., WorkerProcess]
PARTITIONS = 4


async def assert_decides_as_replay(bootstrap: str, records: list[WireRecord]) -> None:
    decisions, flags = replayed(records)
    assert decisions and flags
    want_decisions = by_id(decisions, "decision_id")
    want_flags = by_id(flags, "flag_id")

    def complete(key: str, want: dict[str, Any]) -> Callable[[list[Any]], bool]:
        return lambda records: len(by_id(decoded(records), key)) >= len(want)

    got_decisions = by_id(
        decoded(
            await read_topic(
                bootstrap, TOPICS.decisions, complete("decision_id", want_decisions), 180
            )
        ),
        "decision_id",
    )
    got_flags = by_id(
        decoded(await read_topic(bootstrap, TOPICS.flags, complete("flag_id", want_flags), 180)),
        "flag_id",
    )
    assert got_decisions == want_decisions
    assert got_flags == want_flags


async def committed_records(bootstrap: str, group: str = "lineguard") -> int:
    """Input records the group has committed (every input topic starts at offset 0)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for topic in TOPICS.inputs():
            for partition in range(PARTITIONS):
                offset = await consumer.committed(TopicPartition(topic, partition))
                total += offset or 0
        return total
    finally:
        await consumer.stop()


def counted(worker: WorkerProcess) -> dict[str, float]:
    metrics = worker.metrics()

    def total(prefix: str) -> float:
        return sum(value for name, value in metrics.items() if name.startswith(prefix))

    return {
        "applied": total("lineguard_events_consumed_total"),
        "duplicates": total("lineguard_duplicates_total"),
        "dead_letters": total("lineguard_dead_letters_total"),
        "rollbacks": total("lineguard_batch_failures_total"),
    }


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_kills_and_scaling_2_1_3_mid_stream_decide_as_replay(
    broker: EmbeddedBroker, workers: Workers, store: str
) -> None:
    records = simulated_population(PARTITIONS, users=500)
    await create_topics(broker.bootstrap, PARTITIONS)
    a = workers("a", store=store, partitions=PARTITIONS).start()
    b = workers("b", store=store, partitions=PARTITIONS).start()
    await asyncio.to_thread(a.wait_ready)
    await asyncio.to_thread(b.wait_ready)

    settings = Settings(brokers=[broker.bootstrap], partitions=PARTITIONS)
    producing = asyncio.create_task(offer(records, settings, rate=2_500.0))

    for _ in range(2):  # SIGKILL mid-batch, twice, and back with the same store
        await asyncio.sleep(3)
        b.kill()
        await asyncio.sleep(1)
        b.start()
    # The group settles before `a` leaves: a member leaving while a rebalance is under way
    # (here, the one that expires b's killed member) trips the embedded broker's group
    # coordinator (see stuck_generation and RELIABILITY.md), never Apache Kafka's.
    await asyncio.to_thread(b.wait_ready, 60)
    await asyncio.sleep(1)
    assert a.terminate() == 0  # 2 -> 1
    await asyncio.sleep(3)
    c = workers("c", store=store, partitions=PARTITIONS).start()
    d = workers("d", store=store, partitions=PARTITIONS).start()  # 1 -> 3
    await producing
    try:
        for worker in (b, c, d):
            await asyncio.to_thread(worker.wait_ready, 90)
        await assert_decides_as_replay(broker.bootstrap, records)
        owned = [
            set((await asyncio.to_thread(w.get, "/readyz"))[1]["partitions"]) for w in (b, c, d)
        ]
        assert set().union(*owned) == set(range(PARTITIONS))
        assert all(owned), "every worker of the three holds a partition"
    except Exception:
        for worker in (a, b, c, d):
            print(f"--- worker {worker.name}:\n{worker.log_tail(20_000)}")
        stuck = stuck_generation([w.log_path.read_text() for w in (b, c, d)])
        if stuck is not None:
            pytest.xfail(f"the embedded broker's group coordinator is stuck: {stuck}")
        raise


def stuck_generation(logs: list[str]) -> str | None:
    """The embedded broker's known group stall, if every log shows it: a generation formed
    with a member that had left as its leader, never expired, so each member joins the same
    generation again and again (the leader's SyncGroup never comes). Apache Kafka expires
    such a member after its session; this broker does not."""
    seen = []
    for text in logs:
        joins = Counter(re.findall(r"Joined group '[^']*' \(generation (\d+)\)", text))
        generation, times = joins.most_common(1)[0] if joins else ("", 0)
        if times < 5:
            return None
        seen.append(f"generation {generation} joined {times} times")
    return "; ".join(seen)


async def test_a_stalled_broker_is_visible_then_survived_with_nothing_lost(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    records = simulated_population(PARTITIONS, users=300)
    # A few copies (duplicates) and bad records, so that the conservation below means something.
    records[100:100] = records[10:30]
    records[500:500] = [WireRecord("login", "u-bad", b"{not json")] * 5
    await create_topics(broker.bootstrap, PARTITIONS)
    worker = workers(partitions=PARTITIONS, stall_seconds="3").start()
    await asyncio.to_thread(worker.wait_ready)
    settings = Settings(brokers=[broker.bootstrap], partitions=PARTITIONS)
    producing = asyncio.create_task(offer(records, settings, rate=3_000.0))
    await asyncio.sleep(4)

    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        stalled_at: float | None = None
        reasons: set[str] = set()
        started = time.monotonic()
        while time.monotonic() - started < 20:
            status, body = await asyncio.to_thread(worker.get, "/readyz")
            if status == 503:
                stalled_at = stalled_at or time.monotonic() - started
                reasons.add(str(body.get("reason")))
            await asyncio.sleep(0.5)
        silence = worker.metrics().get("lineguard_fetch_silence_seconds", 0.0)
        in_flight = worker.metrics().get("lineguard_batch_in_flight_seconds", 0.0)
        assert worker.running(), "a stalled broker must not stop the worker"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert stalled_at is not None, "/readyz said ready throughout a 20 s broker stall"
    assert any("brokers" in reason for reason in reasons), reasons
    assert max(silence, in_flight) > 3

    await producing
    await asyncio.to_thread(wait_for, worker.ready, 60, "ready again after the stall")
    await assert_decides_as_replay(broker.bootstrap, records)

    # Conservation, once everything is committed: records committed = events applied
    # (duplicates included) + dead letters; the copies were counted as duplicates.
    def settled() -> bool:
        n = counted(worker)
        return n["applied"] + n["dead_letters"] >= len(records)

    await asyncio.to_thread(wait_for, settled, 60, "every record counted")
    n = counted(worker)
    assert await committed_records(broker.bootstrap) == len(records)
    assert n["applied"] + n["dead_letters"] == len(records)
    assert n["dead_letters"] == 5
    assert n["duplicates"] == replay_of(records).duplicates
    assert n["duplicates"] >= 20  # the copies, beside the population's own redeliveries
    assert worker.running()


async def test_two_workers_survive_a_broker_stalled_past_their_sessions(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    """The broker stopped for 60 s, twenty times the group session, while two workers are
    mid-stream: neither exits, both say why they are not ready throughout, both rejoin and
    finish, and the decisions equal replay."""
    records = simulated_population(PARTITIONS, users=1_500)
    await create_topics(broker.bootstrap, PARTITIONS)
    pair = [workers(name, partitions=PARTITIONS, stall_seconds="3").start() for name in "ab"]
    for worker in pair:
        await asyncio.to_thread(worker.wait_ready)
    settings = Settings(brokers=[broker.bootstrap], partitions=PARTITIONS)
    await offer(records, settings, rate=1_000_000.0)  # all of it, then stall mid-stream
    await asyncio.sleep(1)
    assert sum(w.consumed() for w in pair) < len(records), "the stall must come mid-stream"

    pid = broker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        answers: list[int] = []
        started = time.monotonic()
        while time.monotonic() - started < 60:
            await asyncio.sleep(5)
            assert all(w.running() for w in pair), "a stalled broker must not stop a worker"
            answers += [(await asyncio.to_thread(w.get, "/readyz"))[0] for w in pair]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert answers.count(503) >= len(answers) - 2, answers  # not ready, after the first 3 s

    for worker in pair:
        await asyncio.to_thread(wait_for, worker.ready, 120, f"{worker.name} ready again")
    await assert_decides_as_replay(broker.bootstrap, records)
    assert all(w.running() for w in pair)
    for worker in pair:  # every failed send was observed (the batch retried), none left over
        assert "Task exception was never retrieved" not in worker.log_path.read_text()


async def test_a_burst_far_above_the_workers_rate_keeps_memory_bounded(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    records = simulated_population(PARTITIONS, users=1_500)
    await create_topics(broker.bootstrap, PARTITIONS)
    settings = Settings(brokers=[broker.bootstrap], partitions=PARTITIONS)
    await offer(records, settings, rate=1_000_000.0)  # all of it at once, before the worker
    worker = workers(partitions=PARTITIONS, live_users="300", max_batch_records="2000").start()
    await asyncio.to_thread(worker.wait_ready)
    peak = 0

    def progress() -> bool:
        nonlocal peak
        peak = max(peak, rss_bytes(worker))
        return worker.consumed() >= len(records)

    await asyncio.to_thread(wait_for, progress, 180, "the burst consumed")
    await assert_decides_as_replay(broker.bootstrap, records)
    live = worker.metrics()["lineguard_live_users"]
    assert 0 < live <= 300
    # Bounded: held records are capped per partition and user states beyond the live limit
    # are kept as bytes; the whole burst never sits in memory as objects.
    print(f"peak RSS {peak / 2**20:.0f} MiB for {len(records):,} records")
    assert peak < 400 * 2**20


def rss_bytes(worker: WorkerProcess) -> int:
    assert worker.process is not None
    try:
        with open(f"/proc/{worker.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
