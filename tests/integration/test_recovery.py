"""Stopped, killed and restarted workers, and a group handing partitions over."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from schemas.events import Event
from tests.core.scenario import login
from tests.integration.harness import (
    TOPICS,
    create_topics,
    decoded,
    produce,
    read_topic,
    share_partitions,
    simulated_population,
    wait_for,
)
from tests.integration.scenarios import START
from tests.integration.test_faults import assert_decides_as_replay
from workers.broker import EmbeddedBroker
from workers.core.engine import Engine
from workers.core.policy import load_policy
from workers.replay import replay_events
from workers.settings import Settings
from workers.sim.generator import SimulationConfig, generate
from workers.sim.producer import offer
from workers.stream.routing import partition_for
from workers.stream.store import RocksStore
from workers.stream.worker_process import WorkerProcess

pytestmark = pytest.mark.integration
Workers = Callable[..., WorkerProcess]


def switching_logins(users: int, first: int, last: int, prefix: str = "sw") -> list[Event]:
    """Logins ``first..last`` (0-based) of users who each use four devices within a day."""
    return [
        login(START + timedelta(hours=2 * n, seconds=user), f"d{n}", user=f"{prefix}-{user}")
        for n in range(first, last + 1)
        for user in range(users)
    ]


def assert_one_id_per_decision(decisions: list[dict[str, object]]) -> None:
    """Redelivered decisions are byte-identical copies; no decision exists under two ids."""
    by_id: dict[object, dict[str, object]] = {}
    ids_per_decision: dict[tuple[object, ...], set[object]] = {}
    for decision in decisions:
        first = by_id.setdefault(decision["decision_id"], decision)
        assert first == decision
        key = (decision["user_id"], decision["decision"], decision["decided_at"])
        ids_per_decision.setdefault(key, set()).add(decision["decision_id"])
    assert all(len(ids) == 1 for ids in ids_per_decision.values())


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_a_stopped_worker_restarts_with_its_state(
    broker: EmbeddedBroker, workers: Workers, store: str
) -> None:
    users = 60
    await create_topics(broker.bootstrap)
    first = workers(store=store).start().wait_ready()
    before = switching_logins(users, 0, 2)
    await produce(broker.bootstrap, before)
    wait_for(lambda: first.consumed() >= len(before), what="first part consumed")
    assert first.terminate() == 0

    await produce(broker.bootstrap, switching_logins(users, 3, 3))
    second = workers(store=store).start().wait_ready()
    records = await read_topic(broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= users)
    decisions = decoded(records)
    assert_one_id_per_decision(decisions)
    assert {d["user_id"] for d in decisions} == {f"sw-{user}" for user in range(users)}
    assert {d["reasons"][0]["code"] for d in decisions} == {"DEVICE_SWITCHING"}
    metrics = second.metrics()
    assert metrics["lineguard_users_in_store"] == users or wait_users(second, users)
    assert metrics["lineguard_changelog_restore_seconds_count"] >= 1
    restores = [
        json.loads(line)
        for line in second.log_path.read_text().splitlines()
        if '"restored partitions' in line
    ]
    first_start, restart = restores[0], restores[-1]
    assert first_start["changelog_users_read"] == 0
    if store == "rocksdb":  # the local store was current: no changelog record read back
        assert restart["changelog_users_read"] == 0
        assert sum(restart["changelog_starts"].values()) > 0
    else:
        assert restart["changelog_users_read"] == users


def decided(worker: WorkerProcess) -> float:
    return sum(
        value
        for name, value in worker.metrics().items()
        if name.startswith("lineguard_decisions_total")
    )


def wait_users(worker: WorkerProcess, users: int) -> bool:
    wait_for(lambda: worker.metrics()["lineguard_users_in_store"] == users, what="users gauge")
    return True


async def test_a_killed_worker_recovers_from_the_changelog_without_conflicting_decisions(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    events = list(generate(SimulationConfig(users=800, days=200, seed=5)))
    expected = replay_events(events, load_policy(None))
    first_part, second_part = events[: len(events) * 3 // 5], events[len(events) * 3 // 5 :]
    await create_topics(broker.bootstrap)
    await produce(broker.bootstrap, first_part)

    # Killed once a good part is decided: offsets, outputs and changelog have moved on,
    # usually with a batch in flight. The rest arrives while it is down.
    first = workers().start().wait_ready()
    total = len([d for d in expected.decisions if d.decided_at <= first_part[-1].occurred_at])
    wait_for(lambda: decided(first) >= total // 4, what="a quarter decided", timeout=90)
    first.kill()
    assert "worker stopped" not in first.log_tail()
    await produce(broker.bootstrap, second_part)
    second = workers().start().wait_ready()

    # Each partition's clock ends at its own last event, so only compare the decisions
    # replay made up to the earliest partition end (later ones depend on the final clock).
    ends: dict[int, object] = {}
    for item in events:
        ends[partition_for(item.user_id, 4)] = item.occurred_at
    horizon = min(ends.values())  # type: ignore[type-var]
    wanted = {d.decision_id: d for d in expected.decisions if d.decided_at <= horizon}
    assert len(wanted) > 10

    def complete(records: list[object]) -> bool:
        return {d["decision_id"] for d in decoded(records)} >= set(wanted)

    decisions = decoded(await read_topic(broker.bootstrap, TOPICS.decisions, complete))
    assert_one_id_per_decision(decisions)
    for decision in decisions:
        if decision["decision_id"] in wanted:
            assert decision == wanted[decision["decision_id"]].model_dump(mode="json")
    assert 0 < second.consumed() < len(events)  # it resumed from committed offsets
    replay_ids = {d.decision_id for d in expected.decisions}
    assert {d["decision_id"] for d in decisions} <= replay_ids


async def test_killing_one_of_two_workers_hands_its_partitions_and_state_over(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    users = 40
    await create_topics(broker.bootstrap)
    one = workers("one").start()
    two = workers("two").start()
    share_partitions(one, two)
    before = switching_logins(users, 0, 2)
    await produce(broker.bootstrap, before)
    wait_for(lambda: one.consumed() + two.consumed() >= len(before), what="first part consumed")

    owned_by_two = set(two.get("/readyz")[1]["partitions"])
    user_on_two = next(
        f"sw-{u}" for u in range(users) if partition_for(f"sw-{u}", 4) in owned_by_two
    )
    status, body = one.get(f"/users/{user_on_two}")
    assert status == 200
    assert body["served_by"] == two.url
    assert body["line_state"] == "open"

    two.kill()
    wait_for(
        lambda: one.ready() and one.get("/readyz")[1]["partitions"] == [0, 1, 2, 3],
        timeout=60,
        what="the survivor owns every partition",
    )
    await produce(broker.bootstrap, switching_logins(users, 3, 3))
    decisions = decoded(
        await read_topic(broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= users)
    )
    assert_one_id_per_decision(decisions)
    assert {d["user_id"] for d in decisions} == {f"sw-{u}" for u in range(users)}
    status, body = one.get(f"/users/{user_on_two}")
    assert (status, body["line_state"]) == (200, "closed")
    assert json.dumps(body["last_closure_reasons"]).count("DEVICE_SWITCHING") == 1


async def test_a_store_ahead_of_a_fresh_changelog_is_discarded(
    broker: EmbeddedBroker, workers: Workers, tmp_path: Path
) -> None:
    # A RocksDB store left by an earlier broker's log: it claims changelog offset 1000.
    engine = Engine(load_policy(None))
    engine.apply(login(START, "d1", user="ghost"))
    stale = RocksStore(tmp_path / "worker-data" / "lineguard", partition_for("ghost", 4))
    stale.write(engine.take_dirty(), 1000, engine.pending)
    stale.close()

    await create_topics(broker.bootstrap)
    worker = workers(store="rocksdb").start().wait_ready()
    assert "was replaced; discarding the local store" in worker.log_tail()
    assert worker.get("/users/ghost")[0] == 404


async def test_a_restarted_rocksdb_worker_reads_users_on_demand_and_decides_as_replay(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    records = simulated_population(4, users=300)
    users = len({record.user_id for record in records})
    first_half, second_half = records[: len(records) // 2], records[len(records) // 2 :]
    stored = len({record.user_id for record in first_half})
    assert 40 < stored < users
    await create_topics(broker.bootstrap)
    settings = Settings(brokers=[broker.bootstrap], partitions=4)
    options = {"store": "rocksdb", "live_users": "40"}

    def gauge(worker: WorkerProcess, name: str, value: float) -> None:
        wait_for(lambda: worker.metrics()[name] == value, 10, name)

    first = workers(**options).start()
    await asyncio.to_thread(first.wait_ready)
    await offer(first_half, settings, rate=1_000_000.0)
    await asyncio.to_thread(wait_for, lambda: first.consumed() >= len(first_half), 90, "half")
    await asyncio.to_thread(gauge, first, "lineguard_stored_users", stored)
    assert first.terminate() == 0

    second = workers(**options).start()
    await asyncio.to_thread(second.wait_ready)
    metrics = second.metrics()
    # Reopened from the deadline index alone: no state read, none held as an object.
    assert metrics["lineguard_store_reads_total"] == 0
    assert metrics["lineguard_stored_users"] == metrics["lineguard_users_in_store"] == stored
    assert metrics["lineguard_live_users"] == 0
    user_id = first_half[0].user_id
    status, body = second.get(f"/users/{user_id}")
    assert (status, body["user_id"]) == (200, user_id)
    assert second.metrics()["lineguard_store_reads_total"] == 1  # that user, on demand

    await offer(second_half, settings, rate=1_000_000.0)
    await assert_decides_as_replay(broker.bootstrap, records)
    await asyncio.to_thread(wait_for, lambda: second.consumed() >= len(second_half), 90, "rest")
    await asyncio.to_thread(gauge, second, "lineguard_stored_users", users)
    metrics = second.metrics()
    assert metrics["lineguard_users_in_store"] == users
    assert metrics["lineguard_store_reads_total"] > 0
    assert 0 < metrics["lineguard_live_users"] <= 40
