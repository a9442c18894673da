"""``lineguard check-topics`` against the embedded broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.harness import REPO, TOPICS, create_topics
from workers.broker import EmbeddedBroker
from workers.settings import Settings
from workers.stream.policy_feed import ensure_topic

pytestmark = pytest.mark.integration


async def check_topics(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workers.cli", "check-topics", *args],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


async def test_the_topics_the_worker_creates_pass(broker: EmbeddedBroker) -> None:
    await create_topics(broker.bootstrap, partitions=4)
    result = await check_topics("--brokers", broker.bootstrap, "--partitions", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: 12 topics with 4 partitions each")
    wrong_count = await check_topics("--brokers", broker.bootstrap, "--partitions", "6")
    assert wrong_count.returncode == 1
    assert wrong_count.stdout.count("partitions, the worker expects 6") == 12
    await ensure_topic(Settings(brokers=[broker.bootstrap], partitions=4))
    with_policies = await check_topics("--brokers", broker.bootstrap, "--partitions", "4")
    assert with_policies.returncode == 0, with_policies.stdout + with_policies.stderr
    assert "; lineguard.policies with one partition, compacted" in with_policies.stdout


async def test_missing_uncompacted_and_misfit_topics_are_each_printed(
    broker: EmbeddedBroker,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                *[NewTopic(topic, 4, 1) for topic in TOPICS.inputs() if topic != TOPICS.login],
                NewTopic(TOPICS.login, 3, 1),
                NewTopic(TOPICS.decisions, 4, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic(TOPICS.changelog, 4, 1),  # not compacted
            ]
        )
    finally:
        await admin.close()
    result = await check_topics("--brokers", broker.bootstrap, "--partitions", "4")
    assert result.returncode == 1
    printed = result.stdout.splitlines()
    assert all(line.startswith("problem: ") for line in printed)
    assert any("not co-partitioned" in line for line in printed)
    assert any(
        line.startswith("problem: lineguard.login (login input): 3 partitions") for line in printed
    )
    assert "problem: lineguard.flags (flags): missing" in printed
    assert "problem: lineguard.dead-letter (dead letters): missing" in printed
    assert "problem: lineguard.shadow-decisions (shadow decisions): missing" in printed
    assert "problem: lineguard.overrides (overrides): missing" in printed
    assert any(
        "lineguard.decisions (decisions): cleanup.policy is 'compact'" in line for line in printed
    )
    assert any(
        "lineguard.changelog (changelog): cleanup.policy is 'delete'" in line for line in printed
    )
    assert len(printed) == 8
