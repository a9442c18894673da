"""What comes out of Kafka: every reason code, dead letters, and equality with replay."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas.events import event_to_json
from schemas.outputs import REASON_CODES
from tests.core.scenario import login
from tests.integration.harness import (
    TOPICS,
    create_topics,
    decoded,
    produce,
    read_topic,
    wait_for,
)
from tests.integration.scenarios import in_time_order, reason_histories, restore_history
from workers.broker import EmbeddedBroker
from workers.codec import read_dead_letter
from workers.core.policy import load_policy
from workers.replay import replay_events
from workers.sim.generator import SimulationConfig, generate
from workers.stream.routing import partition_for
from workers.stream.worker_process import WorkerProcess

pytestmark = pytest.mark.integration
Workers = Callable[..., WorkerProcess]


async def test_every_reason_code_reaches_the_decisions_topic(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    worker = workers().start().wait_ready()
    histories = reason_histories()
    restored_user = "r-restore"
    await produce(
        broker.bootstrap, in_time_order([*histories.values(), restore_history(restored_user)])
    )

    def complete(records: list[object]) -> bool:
        kinds = {(d["user_id"], d["decision"]) for d in decoded(records)}
        return len(kinds) >= len(histories) + 2

    decisions = decoded(await read_topic(broker.bootstrap, TOPICS.decisions, complete))
    closes = {d["user_id"]: d for d in decisions if d["decision"] == "close_line"}
    for code, history in histories.items():
        user_id = history[0].user_id
        assert user_id in closes, f"no close for {code}"
        assert code in [reason["code"] for reason in closes[user_id]["reasons"]]
        assert closes[user_id]["line_state"] == "closed"
        assert closes[user_id]["next_review_at"] is not None
    closing = {code for code in REASON_CODES if load_policy().action(code) == "close_line"}
    closing.discard("MANUAL_REVIEW")  # an override's closure: tests/integration/test_overrides.py
    assert {code for d in closes.values() for code in (r["code"] for r in d["reasons"])} >= closing
    restores = [d for d in decisions if d["decision"] == "restore_eligibility"]
    assert [d["user_id"] for d in restores] == [restored_user]
    assert restores[0]["line_state"] == "restore_eligible"

    status, body = worker.get(f"/users/{restored_user}")
    assert status == 200
    assert body["line_state"] == "restore_eligible"
    assert worker.get("/users/nobody-at-all")[0] == 404
    # Counters move when the batch commits, a moment after its records are readable.
    cash_out = 'lineguard_decisions_total{decision="close_line",reason="CASH_OUT"}'
    wait_for(lambda: worker.metrics().get(cash_out, 0) >= 1, what="the CASH_OUT counter")
    metrics = worker.metrics()
    assert metrics[cash_out] == 1
    assert metrics["lineguard_ready"] == 1


async def test_malformed_messages_go_to_the_dead_letter_topic_while_valid_ones_flow(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    worker = workers().start().wait_ready()
    histories = reason_histories(prefix="dl")
    low_score = histories["LOW_CREDIT_SCORE"]
    login = event_to_json(low_score[0])
    bad: list[tuple[str, bytes | None, bytes]] = [
        (TOPICS.login, b"dl-low-score", b"{not json"),
        (TOPICS.login, b"dl-low-score", b'{"type": "login", "event_id": "x"}'),
        (TOPICS.transaction, b"dl-low-score", login.replace(b'"login"', b'"teleport"')),
        (TOPICS.transaction, b"dl-low-score", login),
        (TOPICS.login, b"someone-else", login),
        (TOPICS.repayment, b"dl-low-score", b"\xff\xfe\x00"),
    ]
    sent = await produce(broker.bootstrap, [low_score[0], *bad, low_score[1]])
    expected_kinds = [
        "not_json",
        "invalid_contract",
        "unknown_type",
        "wrong_topic",
        "invalid_contract",
        "not_json",
    ]

    letters = await read_topic(
        broker.bootstrap, TOPICS.dead_letter, lambda records: len(records) >= len(bad)
    )
    by_source = {(r.value, dict(r.headers)["source_topic"].decode()): r for r in letters}
    for (topic, key, value), metadata, kind in zip(bad, sent[1:-1], expected_kinds, strict=True):
        record = by_source[(value, topic)]
        letter = read_dead_letter(record.headers)
        assert letter.error_kind == kind
        assert letter.error
        assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
            metadata.topic,
            metadata.partition,
            metadata.offset,
        )
        assert record.key == key
    decisions = decoded(
        await read_topic(broker.bootstrap, TOPICS.decisions, lambda records: len(records) >= 1)
    )
    assert [(d["user_id"], d["reasons"][0]["code"]) for d in decisions] == [
        ("dl-low-score", "LOW_CREDIT_SCORE")
    ]
    # A batch is counted just after its commit, a moment after its outputs are readable.
    counts = {
        'lineguard_dead_letters_total{error_kind="not_json"}': 2,
        'lineguard_dead_letters_total{error_kind="invalid_contract"}': 2,
        'lineguard_events_consumed_total{type="login"}': 1,
    }
    wait_for(
        lambda: all(worker.metrics().get(name) == n for name, n in counts.items()),
        30,
        f"metrics {counts}",
    )
    assert worker.process is not None and worker.process.poll() is None


async def test_stream_decisions_equal_replay_on_the_same_events(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    partitions = 4
    config = SimulationConfig(users=300, days=200, seed=11)
    events = list(generate(config))
    events += [item for group in reason_histories(prefix="eq").values() for item in group]
    events = in_time_order([events])
    # One last event per partition at the same moment, so every partition's event clock
    # ends where replay's does and the same deadlines have fired on both sides.
    final = events[-1].occurred_at + timedelta(seconds=1)
    sentinels: dict[int, str] = {}
    for index in range(10_000):
        user_id = f"clock-{index}"
        sentinels.setdefault(partition_for(user_id, partitions), user_id)
        if len(sentinels) == partitions:
            break
    events += [login(final, "d", user=user_id) for user_id in sentinels.values()]

    expected = replay_events(events, load_policy(None))
    assert len(expected.decisions) > 20

    # Preloaded, so that every input is complete when read: the worker then applies each
    # partition's events in exact time order (live traffic can interleave topics slightly).
    await create_topics(broker.bootstrap, partitions)
    await produce(broker.bootstrap, events)
    workers(partitions=partitions).start().wait_ready()
    wanted = len(expected.decisions)
    records = await read_topic(
        broker.bootstrap, TOPICS.decisions, lambda records: len(records) >= wanted, timeout=120
    )
    stream = {d["decision_id"]: d for d in decoded(records)}
    replayed = {d.decision_id: d.model_dump(mode="json") for d in expected.decisions}
    assert stream == replayed
    flags = decoded(
        await read_topic(
            broker.bootstrap, TOPICS.flags, lambda records: len(records) >= len(expected.flags)
        )
    )
    assert Counter(f["flag_id"] for f in flags) == Counter(f.flag_id for f in expected.flags)


async def test_the_wall_clock_timer_fires_deadlines_without_new_events(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    from datetime import UTC, datetime

    workers(clock="wall").start().wait_ready()
    # First seen 90 days and 15 minutes (the grace) ago, minus a few seconds: inactivity
    # fell due 15 minutes ago and fires a few seconds from now.
    grace = timedelta(seconds=load_policy(None).time.grace_seconds)
    first_seen = datetime.now(UTC) - timedelta(days=90) - grace + timedelta(seconds=4)
    # An event from next year would drag the clock ahead and close every line: refused.
    next_year = login(datetime.now(UTC) + timedelta(days=365), "d", user="time-traveller")
    await produce(
        broker.bootstrap,
        [next_year, login(first_seen, "d1", user="wall-idle")],
    )
    letters = await read_topic(broker.bootstrap, TOPICS.dead_letter, lambda r: len(r) >= 1)
    assert read_dead_letter(letters[0].headers).error_kind == "from_the_future"
    assert b"after wall time" in dict(letters[0].headers)["error"]
    decisions = decoded(
        await read_topic(broker.bootstrap, TOPICS.decisions, lambda records: len(records) >= 1)
    )
    assert [(d["user_id"], d["reasons"][0]["code"]) for d in decisions] == [
        ("wall-idle", "INACTIVITY")
    ]
    assert decisions[0]["trigger_event_id"] is None
    assert decisions[0]["decided_at"] == (first_seen + timedelta(days=90)).isoformat().replace(
        "+00:00", "Z"
    )
