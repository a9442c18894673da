"""Live policy versions on a real broker: a policy published with ``lineguard policy publish``
reaches a running worker, which switches between batches and logs where; an invalid record
is refused while processing goes on; ``lineguard replay --policy-at`` at the logged clock
reproduces the decisions the worker published."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.events import Event
from tests.core.scenario import POLICY, at, login, score
from tests.core.test_policy_versions import STRICT_SCORE, record_bytes, variant
from tests.integration.harness import (
    TOPICS,
    create_topics,
    decoded,
    lineguard,
    produce,
    read_topic,
    wait_for,
)
from workers.broker import EmbeddedBroker
from workers.core.policy import parse_policy
from workers.replay import replay_events
from workers.stream.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration]

USERS = 12


def falls(prefix: str, day: float) -> list[Event]:
    """Each user logs in, then their score falls from 700 to 620: no closure under the
    default policy (600), a LOW_CREDIT_SCORE closure under the strict one (650)."""
    events: list[Event] = []
    for n in range(USERS):
        user = f"{prefix}{n}"
        events += [
            login(at(day), user=user),
            score(at(day + 1), 700, user=user),
            score(at(day + 2), 620, user=user),
        ]
    return events


def metric(worker: WorkerProcess, name: str) -> float:
    return worker.metrics().get(name, 0.0)


def switch_lines(worker: WorkerProcess) -> list[dict[str, Any]]:
    lines = []
    for line in worker.log_path.read_text().splitlines():
        if "switched the live policy" in line and line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def test_a_published_policy_switches_the_worker_between_batches_as_replay_does(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    worker = workers().start().wait_ready()
    assert metric(worker, f'lineguard_policy_info{{name="live",version="{POLICY.version}"}}') == 1

    before = falls("a", 0)
    await produce(bootstrap, before)
    wait_for(lambda: worker.consumed() >= len(before), 60, "the first users applied")

    strict_file = tmp_path / "strict.toml"
    strict_file.write_text(STRICT_SCORE)
    checked = lineguard("policy", "validate", str(strict_file), bootstrap=bootstrap)
    assert checked.returncode == 0, checked.stderr
    published = lineguard(
        "policy", "publish", str(strict_file), "--as", "live", "--by", "analyst",
        bootstrap=bootstrap,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    assert "published strict-score as live (was nothing)" in published.stdout
    strict_info = 'lineguard_policy_info{name="live",version="strict-score"}'
    wait_for(lambda: metric(worker, strict_info) == 1, 30, "the worker runs the strict policy")
    assert metric(worker, "lineguard_policy_switches_total") == 1
    shown = lineguard("policy", "show", bootstrap=bootstrap)
    assert "live: strict-score published by analyst" in shown.stdout

    # The same version with other content is refused by publish, and by the worker when a
    # producer writes it anyway; the strict policy stays.
    reused = tmp_path / "reused.toml"
    reused.write_text(variant("strict-score", **{"min_score = 600": "min_score = 700"}))
    refused = lineguard("policy", "publish", str(reused), "--as", "live", bootstrap=bootstrap)
    assert refused.returncode == 2 and "already published with other content" in refused.stderr
    broken = record_bytes(STRICT_SCORE, policy_toml="version = 3", sha256="0" * 64)
    await produce(bootstrap, [(TOPICS.policies, b"live", broken, 0)])
    wait_for(lambda: metric(worker, "lineguard_policy_refused_total") == 1, 30, "a refusal")
    assert metric(worker, strict_info) == 1

    after = falls("b", 30)
    await produce(bootstrap, after)
    records = await read_topic(bootstrap, TOPICS.decisions, lambda r: len(r) >= USERS)
    wait_for(lambda: worker.consumed() >= len(before) + len(after), 60, "every event applied")
    published_decisions = decoded(records)
    assert {d["user_id"][0] for d in published_decisions} == {"b"}
    assert {d["policy_version"] for d in published_decisions} == {"strict-score"}

    (switch,) = switch_lines(worker)
    clocks = [datetime.fromisoformat(c) for c in switch["partition_clocks"].values() if c]
    assert clocks and max(clocks) < at(30)
    assert switch["policy_offset"] == 0 and switch["committed_offsets"]
    expected = replay_events(
        [*before, *after], POLICY, switches=[(max(clocks), parse_policy(STRICT_SCORE))]
    )
    assert sorted(published_decisions, key=lambda d: d["decision_id"]) == sorted(
        (json.loads(d.model_dump_json()) for d in expected.decisions),
        key=lambda d: d["decision_id"],
    )


async def test_a_worker_starts_with_the_published_live_policy(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    strict_file = tmp_path / "strict.toml"
    strict_file.write_text(STRICT_SCORE)
    published = lineguard(
        "policy", "publish", str(strict_file), "--as", "live", bootstrap=bootstrap
    )
    assert published.returncode == 0, published.stderr
    worker = workers().start().wait_ready()
    assert metric(worker, 'lineguard_policy_info{name="live",version="strict-score"}') == 1
    assert "running the published live policy strict-score" in worker.log_path.read_text()


async def test_readiness_fails_while_the_workers_of_a_group_run_different_live_policies(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """One worker follows the policies topic, the other runs its policy file: after a
    publication they disagree, and past the limit both /readyz answer 503 saying who runs
    what; processing goes on."""
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    limit = {"policy_disagreement_seconds": "2"}
    a = workers("a", **limit).start()
    b = workers("b", follow_policies="false", **limit).start()
    a.wait_ready()
    b.wait_ready()
    wait_for(lambda: all(w.get("/readyz")[1]["partitions"] for w in (a, b)), 30, "both own")
    for worker in (a, b):
        status, body = worker.get("/readyz")
        assert status == 200 and body["policy"] == {"live": POLICY.version, "challenger": None}

    strict_file = tmp_path / "strict.toml"
    strict_file.write_text(STRICT_SCORE)
    published = lineguard(
        "policy", "publish", str(strict_file), "--as", "live", bootstrap=bootstrap
    )
    assert published.returncode == 0, published.stderr
    wait_for(lambda: all(w.get("/readyz")[0] == 503 for w in (a, b)), 30, "both unready")
    _, body_a = a.get("/readyz")
    _, body_b = b.get("/readyz")
    assert body_a["policy"]["live"] == "strict-score" and body_b["policy"]["live"] == POLICY.version
    assert f"strict-score here, {POLICY.version} at {b.url}" in body_a["reason"]
    assert f"{POLICY.version} here, strict-score at {a.url}" in body_b["reason"]

    events = falls("c", 0)
    await produce(bootstrap, events)
    wait_for(lambda: a.consumed() + b.consumed() >= len(events), 60, "processing goes on")
