"""A defect in the decision core on one event becomes an ``internal`` dead letter; the
stream goes on. The batch loop runs in-process here, on the embedded broker."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from schemas.events import Event
from tests.integration.harness import (
    TOPICS,
    create_topics,
    decoded,
    in_process_settings,
    produce,
    read_topic,
)
from tests.integration.scenarios import reason_histories
from workers.broker import EmbeddedBroker
from workers.codec import read_dead_letter
from workers.core.engine import Engine, Step
from workers.core.policy import load_policy
from workers.metrics import Metrics
from workers.stream import processor as processor_module
from workers.stream.service import StreamService

pytestmark = pytest.mark.integration


class FailingEngine(Engine):
    def apply(self, event: Event, *, fire_due: bool = True) -> Step:
        if event.user_id == "boom":
            raise ZeroDivisionError("a defect")
        return super().apply(event, fire_due=fire_due)


async def test_a_core_failure_is_an_internal_dead_letter_and_the_stream_goes_on(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setattr(processor_module, "Engine", FailingEngine)
    settings = in_process_settings(broker.bootstrap, str(tmp_path))
    await create_topics(broker.bootstrap)
    service = StreamService(settings, load_policy(None), Metrics())
    await service.on_start()
    try:
        low_score = reason_histories(prefix="ok")["LOW_CREDIT_SCORE"]
        boom = reason_histories(prefix="x")["DEVICE_SWITCHING"][0].model_copy(
            update={"user_id": "boom"}
        )
        await produce(broker.bootstrap, [boom, *low_score])
        letters = await read_topic(broker.bootstrap, TOPICS.dead_letter, lambda r: len(r) >= 1)
        letter = read_dead_letter(letters[0].headers)
        assert letter.error_kind == "internal"
        assert "ZeroDivisionError" in letter.error
        assert letters[0].key == b"boom"
        decisions = decoded(
            await read_topic(broker.bootstrap, TOPICS.decisions, lambda r: len(r) >= 1)
        )
        assert [d["user_id"] for d in decisions] == ["ok-low-score"]
        assert service.failure is None
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await service.on_stop()
