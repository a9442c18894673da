"""``lineguard check-topics`` without a broker: what counts as a problem, and the exit codes
that need no broker (usage, settings, unreachable brokers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workers.broker import free_port
from workers.settings import Settings
from workers.stream.check_topics import TopicInfo, problems

REPO = Path(__file__).resolve().parents[2]
SETTINGS = Settings(partitions=4)


def healthy() -> dict[str, TopicInfo]:
    return {
        topic: TopicInfo(4, "compact" if topic in SETTINGS.topics.compacted() else "delete")
        for topic in SETTINGS.topics.all()
    }


def check_topics(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "check-topics", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_the_topics_the_worker_creates_have_no_problem() -> None:
    assert problems(SETTINGS, healthy()) == []


def test_missing_topics_are_each_named() -> None:
    found = healthy()
    del found[SETTINGS.topics.login], found[SETTINGS.topics.dead_letter]
    assert problems(SETTINGS, found) == [
        "lineguard.login (login input): missing",
        "lineguard.dead-letter (dead letters): missing",
    ]


def test_inputs_not_co_partitioned_and_outputs_of_another_count_are_problems() -> None:
    found = healthy()
    found[SETTINGS.topics.transaction] = TopicInfo(6)
    found[SETTINGS.topics.decisions] = TopicInfo(2)
    reported = problems(SETTINGS, found)
    assert len(reported) == 3
    assert reported[0].startswith("the input topics are not co-partitioned")
    assert "lineguard.transaction=6" in reported[0]
    assert reported[1].startswith("lineguard.transaction (transaction input): 6 partitions")
    assert reported[2].startswith("lineguard.decisions (decisions): 2 partitions")


def test_the_changelog_must_be_compacted_and_nothing_else() -> None:
    found = healthy()
    found[SETTINGS.topics.changelog] = TopicInfo(4, "delete")
    found[SETTINGS.topics.repayment] = TopicInfo(4, "compact,delete")
    reported = problems(SETTINGS, found)
    assert len(reported) == 2
    assert (
        "lineguard.repayment (repayment input): cleanup.policy is 'compact,delete'" in (reported[0])
    )
    assert "lineguard.changelog (changelog): cleanup.policy is 'delete'" in reported[1]
    found[SETTINGS.topics.changelog] = TopicInfo(4, "compact,delete")
    found[SETTINGS.topics.repayment] = TopicInfo(4)
    assert problems(SETTINGS, found) == []


def test_the_overrides_topic_is_co_partitioned_and_compacted() -> None:
    found = healthy()
    overrides = SETTINGS.topics.overrides
    found[overrides] = TopicInfo(1, "delete")
    assert problems(SETTINGS, found) == [
        "lineguard.overrides (overrides): 1 partitions, the worker expects 4 "
        "(LINEGUARD_PARTITIONS; every topic has the inputs' partition count)",
        "lineguard.overrides (overrides): cleanup.policy is 'delete', expected 'compact' "
        "(otherwise users' overrides are deleted with old segments)",
    ]
    del found[overrides]
    assert problems(SETTINGS, found) == ["lineguard.overrides (overrides): missing"]


def test_the_policies_topic_is_optional_but_one_compacted_partition_when_present() -> None:
    found = healthy()
    policies = SETTINGS.topics.policies
    found[policies] = TopicInfo(1, "compact")
    assert problems(SETTINGS, found) == []
    found[policies] = TopicInfo(4, "delete")
    assert problems(SETTINGS, found) == [
        "lineguard.policies (policies): 4 partitions, expected 1 (one order)",
        "lineguard.policies (policies): cleanup.policy is 'delete', expected 'compact' "
        "(otherwise the live policy is deleted with old segments)",
    ]


def test_unreachable_brokers_exit_3() -> None:
    result = check_topics("--brokers", f"127.0.0.1:{free_port()}", "--timeout", "5")
    assert result.returncode == 3, result.stderr
    assert "cannot reach the Kafka brokers" in result.stderr


def test_usage_and_settings_errors_exit_2() -> None:
    assert check_topics("--partitions", "many").returncode == 2
    assert check_topics("--timeout", "0").returncode == 2
    result = check_topics(LINEGUARD_PARTITIONS="0")
    assert result.returncode == 2
    assert "invalid settings" in result.stderr
