"""Hostile records on a real broker: a record too large to copy, records on the wrong partition."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from schemas.events import event_to_json
from tests.integration.harness import (
    TOPIC_OF_TYPE,
    TOPICS,
    create_topics,
    decoded,
    produce,
    read_topic,
    wait_for,
)
from tests.integration.scenarios import reason_histories
from workers.broker import EmbeddedBroker
from workers.codec import read_dead_letter
from workers.stream.routing import partition_for
from workers.stream.worker_process import WorkerProcess

pytestmark = pytest.mark.integration
Workers = Callable[..., WorkerProcess]
MIB = 1024 * 1024


@pytest.mark.parametrize("size", [2_000_000, 20_000_000], ids=["2MB", "20MB"])
async def test_a_huge_record_becomes_a_bounded_dead_letter_and_is_committed(
    broker: EmbeddedBroker, workers: Workers, size: int
) -> None:
    await create_topics(broker.bootstrap)
    worker = workers().start().wait_ready()
    history = reason_histories(prefix="huge")["LOW_CREDIT_SCORE"]
    user = history[0].user_id
    huge = b'{"type": "login", "padding": "' + b"x" * size + b'"}'
    # The huge record sits between the user's two events, on the same partition. It is
    # larger than the worker's fetch size per partition (4 MiB) when 20 MB: the broker
    # still returns it whole as the first record of a fetch.
    sent = await produce(
        broker.bootstrap,
        [history[0], (TOPICS.login, user.encode(), huge), history[1]],
        max_request_size=size + MIB,
    )

    letters = await read_topic(broker.bootstrap, TOPICS.dead_letter, lambda r: len(r) >= 1)
    assert len(letters) == 1
    letter = read_dead_letter(letters[0].headers)
    assert letters[0].value == huge[: 64 * 1024]
    assert letter.original_size == len(huge)
    assert letter.original_sha256 == hashlib.sha256(huge).hexdigest()
    assert (letter.error_kind, letter.source_partition, letter.source_offset) == (
        "invalid_contract",
        sent[1].partition,
        sent[1].offset,
    )
    decisions = decoded(await read_topic(broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= 1))
    assert [(d["user_id"], d["decision"]) for d in decisions] == [(user, "close_line")]
    assert worker.running()
    assert worker.terminate() == 0

    # A restarted worker starts after the committed huge record: the next dead letter on
    # that partition is the new record's, not the huge one again.
    workers("second").start().wait_ready()
    await produce(broker.bootstrap, [(TOPICS.login, user.encode(), b"{nope")])

    def has_new_letter(records: list[Any]) -> bool:
        return any(record.value == b"{nope" for record in records)

    letters = await read_topic(broker.bootstrap, TOPICS.dead_letter, has_new_letter)
    assert [len(record.value) for record in letters] == [64 * 1024, len(b"{nope")]


async def test_records_on_the_wrong_partition_are_dead_letters_never_applied(
    broker: EmbeddedBroker, workers: Workers
) -> None:
    partitions = 4
    await create_topics(broker.bootstrap, partitions)
    worker = workers().start().wait_ready()
    histories = [reason_histories(prefix=p)["LOW_CREDIT_SCORE"] for p in ("wp", "ok")]
    misplaced, valid = histories
    user = misplaced[0].user_id
    home = partition_for(user, partitions)
    wrong = (home + 1) % partitions
    sent = await produce(
        broker.bootstrap,
        [
            *[
                (TOPIC_OF_TYPE[item.type], user.encode(), event_to_json(item), wrong)
                for item in misplaced
            ],
            *valid,
        ],
    )

    letters = await read_topic(
        broker.bootstrap, TOPICS.dead_letter, lambda r: len(r) >= len(misplaced)
    )
    reported = sorted(
        (read_dead_letter(record.headers) for record in letters),
        key=lambda letter: letter.source_topic,
    )
    expected = sorted(sent[: len(misplaced)], key=lambda metadata: metadata.topic)
    assert len(reported) == len(misplaced)
    for letter, metadata in zip(reported, expected, strict=True):
        assert letter.error_kind == "wrong_partition"
        assert letter.expected_partition == home
        assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
            metadata.topic,
            wrong,
            metadata.offset,
        )
    decisions = decoded(await read_topic(broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= 1))
    assert [d["user_id"] for d in decisions] == [valid[0].user_id]
    counted = 'lineguard_dead_letters_total{error_kind="wrong_partition"}'
    wait_for(lambda: worker.metrics().get(counted) == len(misplaced), 30, counted)
    assert worker.get(f"/users/{user}")[0] == 404
