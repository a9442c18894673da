"""Saving state in the local store fails (a full disk): after the batch's outputs and
changelog were acknowledged, the batch is rolled back and retried, counted and logged,
never silently, and the outputs already sent are not sent twice; while restoring at
assignment, every partition is rebuilt before any batch and the worker then becomes
ready. In-process, embedded broker."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.integration.harness import TOPICS, create_topics, decoded, produce, read_topic
from tests.integration.scenarios import reason_histories
from workers.broker import EmbeddedBroker
from workers.core.policy import load_policy
from workers.metrics import Metrics
from workers.settings import Settings
from workers.stream import partitions as partitions_module
from workers.stream.service import StreamService
from workers.stream.store import MemoryStore, Pending

pytestmark = pytest.mark.integration


class FullDiskStore(MemoryStore):
    failures_left: ClassVar[int] = 0

    def write(
        self,
        records: dict[str, bytes],
        changelog_offset: int,
        pending: Pending,
        *,
        restored: bool = False,
    ) -> None:
        if records and FullDiskStore.failures_left > 0:
            FullDiskStore.failures_left -= 1
            raise OSError(28, "No space left on device")
        super().write(records, changelog_offset, pending, restored=restored)


def service_settings(broker: EmbeddedBroker, data_dir: Path) -> Settings:
    return Settings(
        brokers=[broker.bootstrap],
        partitions=4,
        clock="event",
        session_timeout_seconds=3,
        heartbeat_interval_seconds=0.5,
        data_dir=data_dir,
    )


def open_full_disk_store(kind: str, directory: Path, partition: int) -> Any:
    return FullDiskStore(partition)


async def test_a_failed_state_write_after_the_outputs_is_retried_and_counted(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(partitions_module, "open_store", open_full_disk_store)
    await create_topics(broker.bootstrap)
    metrics = Metrics()
    service = StreamService(service_settings(broker, tmp_path), load_policy(None), metrics)
    await service.on_start()
    try:
        processor = service.processor
        assert processor is not None
        FullDiskStore.failures_left = 1
        history = reason_histories(prefix="disk")["LOW_CREDIT_SCORE"]
        await produce(broker.bootstrap, history)

        def sample(name: str) -> float:
            return metrics.registry.get_sample_value(name) or 0.0

        def settled() -> bool:
            return (
                sample("lineguard_batch_failures_total") > 0
                and processor.failing_since is None
                and sample("lineguard_duplicates_total") >= len(history)
            )

        for _ in range(300):  # the retry waits a 1 s back-off
            if settled():
                break
            await asyncio.sleep(0.1)
        assert FullDiskStore.failures_left == 0
        assert sample("lineguard_batch_failures_total") == 1
        # The retry found the batch's events in the state restored from the changelog.
        assert sample("lineguard_duplicates_total") == len(history)
        assert service.failure is None
        decisions = decoded(
            await read_topic(broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= 1)
        )
        assert [d["user_id"] for d in decisions] == [history[0].user_id]
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await service.on_stop()


async def test_a_failed_state_write_while_restoring_is_rebuilt_before_any_batch(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(partitions_module, "open_store", open_full_disk_store)
    await create_topics(broker.bootstrap)
    history = reason_histories(prefix="restore")["LOW_CREDIT_SCORE"]
    first = StreamService(service_settings(broker, tmp_path), load_policy(None), Metrics())
    await first.on_start()
    try:
        await produce(broker.bootstrap, history)
        await read_topic(broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= 1)
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await first.on_stop()

    FullDiskStore.failures_left = 1  # the restore of the user's state fails once
    metrics = Metrics()
    second = StreamService(service_settings(broker, tmp_path), load_policy(None), metrics)
    await second.on_start()
    try:

        def sample(name: str) -> float:
            return metrics.registry.get_sample_value(name) or 0.0

        for _ in range(300):
            if FullDiskStore.failures_left == 0 and sample("lineguard_ready") == 1:
                break
            await asyncio.sleep(0.1)
        assert FullDiskStore.failures_left == 0
        assert sample("lineguard_ready") == 1
        await produce(broker.bootstrap, [history[-1]])  # a redelivered copy
        for _ in range(300):
            if sample("lineguard_duplicates_total") >= 1:
                break
            await asyncio.sleep(0.1)
        assert sample("lineguard_duplicates_total") == 1
        assert second.failure is None
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await second.on_stop()
