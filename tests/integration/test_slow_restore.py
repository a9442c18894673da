"""A restore that takes longer than the group session: the worker keeps its membership
(its consumer heartbeats while it restores), so when another worker joins meanwhile, the
group waits for it instead of evicting it and handing its partitions to the newcomer while
it goes on processing them. In-process, embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import TOPICS, create_topics, decoded, produce, read_topic
from tests.integration.scenarios import reason_histories
from workers.broker import EmbeddedBroker
from workers.core.policy import load_policy
from workers.metrics import Metrics
from workers.settings import Settings
from workers.stream.partitions import PartitionSet
from workers.stream.service import StreamService

pytestmark = pytest.mark.integration
SESSION_SECONDS = 3.0
RESTORE_SECONDS = 2.5 * SESSION_SECONDS


async def test_a_restore_longer_than_the_session_keeps_the_members_place(
    broker: EmbeddedBroker,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    original = PartitionSet.restore
    slowed: list[list[int]] = []

    async def slow_restore(self: PartitionSet, numbers: list[int]) -> Any:
        if numbers and not slowed:  # the first worker's first restore only
            slowed.append(numbers)
            await asyncio.sleep(RESTORE_SECONDS)
        return await original(self, numbers)

    monkeypatch.setattr(PartitionSet, "restore", slow_restore)
    await create_topics(broker.bootstrap)

    def settings(name: str) -> Settings:
        return Settings(
            brokers=[broker.bootstrap],
            partitions=4,
            clock="event",
            session_timeout_seconds=SESSION_SECONDS,
            heartbeat_interval_seconds=0.5,
            data_dir=tmp_path / name,
            web_port=0,
        )

    first_metrics, second_metrics = Metrics(), Metrics()
    first = StreamService(settings("first"), load_policy(None), first_metrics)
    second = StreamService(settings("second"), load_policy(None), second_metrics)

    def sample(metrics: Metrics, name: str) -> float:
        return metrics.registry.get_sample_value(name) or 0.0

    async def until(condition: Any, seconds: float = 60.0) -> None:
        for _ in range(int(seconds * 10)):
            if condition():
                return
            await asyncio.sleep(0.1)
        raise AssertionError("timed out")

    await first.on_start()
    try:
        await until(lambda: bool(slowed))
        await second.on_start()
        assert not first.ready  # the second joins while the first is restoring
        await until(lambda: first.ready and second.ready)
        await asyncio.sleep(2 * SESSION_SECONDS)  # an evicted member would be rejoining now
        evicted = [r.message for r in caplog.records if "was not recognized" in r.message]
        assert evicted == []
        assert sample(second_metrics, "lineguard_rebalances_total") == 1
        owned = [set(s.processor.partitions) for s in (first, second) if s.processor]
        assert len(owned) == 2 and not owned[0] & owned[1] and owned[0] | owned[1] == {0, 1, 2, 3}

        history = reason_histories(prefix="slow")["LOW_CREDIT_SCORE"]
        await produce(broker.bootstrap, history)
        records = await read_topic(broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= 1)
        assert [d["user_id"] for d in decoded(records)] == [history[0].user_id]
    finally:
        for service in (second, first):
            with contextlib.suppress(asyncio.CancelledError):
                await service.on_stop()
