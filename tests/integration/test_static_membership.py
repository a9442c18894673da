"""Static group membership (``LINEGUARD_GROUP_INSTANCE_ID``) on the embedded broker.

The embedded broker takes the instance id (JoinGroup v5) and names the member after it
(``<instance id>-<uuid>``). A member that comes back with the same id and the same
subscription gets its old member id and partitions without the others being reassigned,
but only when the session outlasts the broker's holds on JoinGroup (half the session) and
SyncGroup (about 3 s): on the tests' usual 3 s session a static group never settles.
These tests pin that behaviour; docs/streaming.md lists the limits.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.harness import TOPICS, create_topics, decoded, produce, read_topic, wait_for
from tests.integration.test_recovery import switching_logins
from workers.broker import EmbeddedBroker, free_port
from workers.stream.worker_process import WorkerProcess

pytestmark = pytest.mark.integration
Workers = Callable[..., WorkerProcess]

_OWNED = re.compile(r'^lineguard_consumer_lag_messages\{partition="(\d+)"\}$')


def owned(worker: WorkerProcess) -> set[int]:
    """The partition numbers the worker processes (one lag series per owned partition)."""
    return {int(m.group(1)) for name in worker.metrics() if (m := _OWNED.match(name))}


def assignments(worker: WorkerProcess) -> float:
    return worker.metrics().get("lineguard_rebalances_total", 0.0)


async def member_ids(bootstrap: str, group: str) -> list[str]:
    """The member ids the broker lists for ``group`` (DescribeGroups)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    ((error_code, _, _, _, _, members),) = response.groups
    assert error_code == 0
    return sorted(member[0] for member in members)


async def decided_users(bootstrap: str, users: set[str]) -> set[str]:
    def complete(records: list[object]) -> bool:
        return {d["user_id"] for d in decoded(records)} >= users

    records = await read_topic(bootstrap, TOPICS.decisions, complete, timeout=60)
    return {d["user_id"] for d in decoded(records)} & users


async def test_a_restarted_static_worker_gets_its_member_id_and_partitions_back(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    # The worker's default session (10 s). A worker's subscription carries its status URL,
    # so the restarted one keeps its web port, as a StatefulSet pod keeps its DNS name.
    await create_topics(broker.bootstrap)
    ports = {name: str(free_port()) for name in ("lineguard-0", "lineguard-1")}
    session = 10.0

    def start(name: str) -> WorkerProcess:
        return workers(
            name,
            group_instance_id=name,
            web_port=ports[name],
            session_timeout_seconds=str(session),
            heartbeat_interval_seconds="1",
        ).start()

    survivor, leaving = start("lineguard-0"), start("lineguard-1")
    survivor.wait_ready(30)
    leaving.wait_ready(30)
    ids = await member_ids(broker.bootstrap, "lineguard")
    assert [member.rsplit("-", 5)[0] for member in ids] == ["lineguard-0", "lineguard-1"]
    kept, held = owned(survivor), owned(leaving)
    assert kept | held == {0, 1, 2, 3} and not kept & held

    # Both join and decide: four devices in a day closes every user's line.
    users = 40
    logins = switching_logins(users, 0, 3, prefix="before")
    await produce(broker.bootstrap, logins)
    wanted = {f"before-{n}" for n in range(users)}
    assert await decided_users(broker.bootstrap, wanted) == wanted
    # A batch's outputs are sent before its offsets are committed, and it is counted once
    # committed: the decisions can be read a moment before the metrics show them.
    await asyncio.to_thread(
        wait_for,
        lambda: survivor.consumed() + leaving.consumed() >= len(logins),
        30,
        "every login counted",
    )
    assert survivor.consumed() > 0 and leaving.consumed() > 0

    # SIGTERM (a static member sends no LeaveGroup) and back with the same id.
    survivor_assignments = assignments(survivor)
    assert leaving.terminate() == 0
    back = start("lineguard-1").wait_ready(30)
    ids_back = await member_ids(broker.bootstrap, "lineguard")

    assert ids_back == ids  # the broker recognised the instance: the same member, none added
    assert owned(back) == held
    assert owned(survivor) == kept
    assert assignments(survivor) == survivor_assignments  # nothing reassigned meanwhile

    # The restarted worker decides on its partitions again. Now and then the broker expires
    # the old session right after the rejoin and the group rebalances once (the sticky
    # assignment keeps every partition where it is); more than once was never seen.
    await produce(broker.bootstrap, switching_logins(users, 0, 3, prefix="after"))
    wanted = {f"after-{n}" for n in range(users)}
    assert await decided_users(broker.bootstrap, wanted) == wanted
    assert owned(back) == held and owned(survivor) == kept
    assert assignments(survivor) <= survivor_assignments + 1


async def test_static_workers_on_a_short_session_keep_rebalancing(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    # The tests' usual 3 s session: JoinGroup and SyncGroup hold a static member for about
    # 6 s, longer than its session, so the broker evicts it ("member_id was not
    # recognized") and the group rebalances again, about every 6.5 s. A dynamic pair on
    # the same broker and settings settles once and stays.
    await create_topics(broker.bootstrap)
    static = [
        workers(f"static-{n}", group_id="lineguard-static", group_instance_id=f"static-{n}")
        for n in range(2)
    ]
    dynamic = [workers(f"dynamic-{n}", group_id="lineguard-dynamic") for n in range(2)]
    for worker in static + dynamic:
        worker.start()
    for worker in static + dynamic:
        worker.wait_ready(30)
    static_first = [assignments(worker) for worker in static]
    dynamic_first = [assignments(worker) for worker in dynamic]
    assert min(static_first + dynamic_first) >= 1

    # Nobody joins or leaves; the static pair is revoked and reassigned all the same.
    wait_for(
        lambda: all(assignments(w) > n for w, n in zip(static, static_first, strict=True)),
        timeout=20,
        what="a static worker reassigned without a membership change",
    )
    assert [assignments(worker) for worker in dynamic] == dynamic_first
    assert all(worker.ready() for worker in dynamic)
    ids = await member_ids(broker.bootstrap, "lineguard-static")
    assert all(member.startswith(("static-0-", "static-1-")) for member in ids)
