"""Per-user overrides on a real broker: records of ``lineguard.overrides`` reach the worker
through the same batches as the events, in time order with them. A suppression holds a
closure back, expires, and then lets it happen at its expiry; a forced closure closes at
once; a bad record is a dead letter; ``lineguard replay --overrides`` gives the decisions
the worker published."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from schemas.control import OverrideRecord
from schemas.events import Event
from tests.core.scenario import POLICY, at, login, rfc3339, score
from tests.core.test_overrides import change, override, suppress_score
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
from workers.codec import read_dead_letter
from workers.replay import replay_events
from workers.stream.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration]

SUPPRESSED, FORCED = "ov-suppressed", "ov-forced"

EVENTS: list[Event] = [
    login(at(0), user=SUPPRESSED, eid="s-1"),
    score(at(1), 550, user=SUPPRESSED, eid="s-2"),  # held back until day 10
    login(at(0), user=FORCED, eid="f-1"),
    login(at(5), user=FORCED, eid="f-2"),
    # The same last moment for both: each one's partition clock passes day 10 plus grace.
    login(at(12), user=SUPPRESSED, eid="s-3"),
    login(at(12), user=FORCED, eid="f-3"),
]
CHANGES: list[OverrideRecord] = [
    change(
        at(0, hours=1),
        suppress_score(created=at(0, hours=1), until=at(10)),
        user=SUPPRESSED,
    ),
    change(
        at(2),
        override("force_close", None, created=at(2), oid="fc-1", note="case 77"),
        user=FORCED,
    ),
]


def as_record(change_record: OverrideRecord) -> tuple[str, bytes, bytes]:
    return (
        TOPICS.overrides,
        change_record.user_id.encode(),
        change_record.model_dump_json().encode(),
    )


def by_user(decisions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {decision["user_id"]: decision for decision in decisions}


async def test_a_suppression_holds_a_closure_until_it_expires_and_a_forced_closure_closes(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess]
) -> None:
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    worker = workers().start().wait_ready()
    await produce(bootstrap, [*EVENTS, *(as_record(c) for c in CHANGES)])
    # A record that is not an override record, and one keyed by another user.
    wrong_key = CHANGES[0].model_dump_json().encode()
    await produce(
        bootstrap,
        [(TOPICS.overrides, b"someone", b"{not json"), (TOPICS.overrides, b"other", wrong_key)],
    )

    records = await read_topic(bootstrap, TOPICS.decisions, lambda r: len(r) >= 2)
    wait_for(lambda: worker.consumed() >= len(EVENTS) + 2, 60, "every event applied")
    decisions = by_user(decoded(records))
    assert set(decisions) == {SUPPRESSED, FORCED}

    suppressed = decisions[SUPPRESSED]
    assert suppressed["decided_at"] == "2026-03-12T09:00:00Z"  # the expiry, not the score
    assert suppressed["trigger_event_id"] is None
    assert [r["code"] for r in suppressed["reasons"]] == ["LOW_CREDIT_SCORE"]
    assert suppressed["reasons"][0]["evidence"]["overrides"] == [
        {"id": "ov-1", "kind": "suppress", "actor": "alice"}
    ]
    forced = decisions[FORCED]
    assert forced["decided_at"] == "2026-03-04T09:00:00Z"
    assert [r["code"] for r in forced["reasons"]] == ["MANUAL_REVIEW"]
    assert forced["reasons"][0]["evidence"]["note"] == "case 77"

    flags = decoded(await read_topic(bootstrap, TOPICS.flags, lambda r: len(r) >= 2))
    low = [f for f in flags if f["signal"] == "LOW_CREDIT_SCORE"]
    assert [f["evidence"]["overrides"][0]["id"] for f in low] == ["ov-1"]

    dead = await read_topic(bootstrap, TOPICS.dead_letter, lambda r: len(r) >= 2)
    kinds = sorted(read_dead_letter(r.headers).error_kind for r in dead)
    assert kinds == ["invalid_contract", "not_json"]
    assert {read_dead_letter(r.headers).source_topic for r in dead} == {TOPICS.overrides}

    # The status API shows the override that still holds; every change was logged by actor.
    status, body = worker.get(f"/users/{FORCED}")
    assert status == 200
    assert [(o["id"], o["kind"], o["actor"]) for o in body["overrides"]] == [
        ("fc-1", "force_close", "alice")
    ]
    wait_for(lambda: worker.metrics().get("lineguard_override_changes_total") == 2, 30, "count")
    logged = [
        json.loads(line)
        for line in worker.log_path.read_text().splitlines()
        if "applied an override change" in line
    ]
    assert [entry["actor"] for entry in logged] == ["alice", "alice"]
    assert not any(SUPPRESSED in line or FORCED in line for line in map(json.dumps, logged))

    # Replay with the same override changes gives exactly what the worker published.
    expected = replay_events(EVENTS, POLICY, overrides=CHANGES)
    assert sorted(decoded(records), key=lambda d: d["decision_id"]) == sorted(
        (json.loads(d.model_dump_json()) for d in expected.decisions),
        key=lambda d: d["decision_id"],
    )


async def test_the_override_command_adds_lists_and_removes_what_the_worker_applies(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess]
) -> None:
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    worker = workers().start().wait_ready()
    user = "cli-user"
    await produce(bootstrap, [login(at(0), user=user, eid="c-1")])

    refused = lineguard(
        "override", "add", user, "--kind", "suppress", "--actor", "bob", "--reason", "r",
        bootstrap=bootstrap, partitions=4,
    )  # fmt: skip
    assert refused.returncode == 2 and "needs expires_at" in refused.stderr
    added = lineguard(
        "override", "add", user, "--kind", "force_close", "--actor", "bob",
        "--reason", "chargeback ring", "--note", "case 91", "--id", "fc-9",
        "--at", rfc3339(at(3)), bootstrap=bootstrap, partitions=4,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(f"added fc-9 for {user}: 1 overrides now")
    watched = lineguard(
        "override", "add", user, "--kind", "watch", "--until", rfc3339(at(60)),
        "--actor", "bob", "--reason", "second look", "--id", "w-9",
        "--at", rfc3339(at(4)), bootstrap=bootstrap, partitions=4,
    )  # fmt: skip
    assert watched.returncode == 0, watched.stderr
    listed = lineguard("override", "list", user, bootstrap=bootstrap, partitions=4)
    assert listed.returncode == 0, listed.stderr
    assert "fc-9: force_close from 2026-03-05T09:00:00Z no expiry" in listed.stdout
    assert "w-9: watch from 2026-03-06T09:00:00Z until 2026-05-01T09:00:00Z" in listed.stdout

    removed = lineguard(
        "override", "remove", user, "fc-9", "--actor", "carol", "--at", rfc3339(at(5)),
        bootstrap=bootstrap, partitions=4,
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    assert "removed fc-9" in removed.stdout
    again = lineguard(
        "override", "remove", user, "fc-9", "--actor", "carol", bootstrap=bootstrap, partitions=4
    )
    assert again.returncode == 2 and "no override 'fc-9'" in again.stderr
    listed = lineguard("override", "list", user, bootstrap=bootstrap, partitions=4)
    assert "fc-9" not in listed.stdout and "w-9" in listed.stdout

    await produce(bootstrap, [login(at(6), user=user, eid="c-2")])
    records = await read_topic(bootstrap, TOPICS.decisions, lambda r: len(r) >= 1)
    (closure,) = decoded(records)
    assert closure["decided_at"] == rfc3339(at(3))
    assert [r["code"] for r in closure["reasons"]] == ["MANUAL_REVIEW"]
    assert closure["reasons"][0]["evidence"]["overrides"] == [
        {"id": "fc-9", "kind": "force_close", "actor": "bob"}
    ]
    changes = await read_topic(bootstrap, TOPICS.overrides, lambda r: len(r) >= 3)
    assert [json.loads(r.value)["changed_by"] for r in changes] == ["bob", "bob", "carol"]
    wait_for(lambda: worker.metrics().get("lineguard_override_changes_total") == 3, 30, "3")
    status, body = worker.get(f"/users/{user}")
    assert status == 200
    assert [o["id"] for o in body["overrides"]] == ["w-9"]
    assert "watch_evidence" in body


async def test_an_override_outlives_a_worker_restart(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess]
) -> None:
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    first = workers().start().wait_ready()
    await produce(bootstrap, [*EVENTS[:2], as_record(CHANGES[0])])
    wait_for(lambda: first.consumed() >= 2, 60, "the first events applied")
    wait_for(lambda: first.metrics().get("lineguard_override_changes_total") == 1, 30, "the change")
    assert first.terminate() == 0

    # Restored from the changelog, the suppression still holds back the closure until day 10.
    await produce(bootstrap, [EVENTS[4]])
    second = workers().start().wait_ready()
    records = await read_topic(bootstrap, TOPICS.decisions, lambda r: len(r) >= 1)
    (closure,) = decoded(records)
    assert closure["user_id"] == SUPPRESSED
    assert closure["decided_at"] == "2026-03-12T09:00:00Z"
    assert closure["reasons"][0]["evidence"]["overrides"][0]["id"] == "ov-1"
    assert second.metrics().get("lineguard_override_changes_total", 0) == 0  # not applied again
