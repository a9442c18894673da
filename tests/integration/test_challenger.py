"""A challenger policy on a real broker: published with ``lineguard policy publish --as
challenger``, every worker runs it beside the live policy over the same events; its would-be
decisions and flags reach only ``lineguard.shadow-decisions`` (as a replay under the
challenger makes them), live outputs are unchanged, the disagreement counters equal a
comparison of the two topics' dumps, and a defect of the challenger never touches live."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.events import Event
from schemas.outputs import Output
from tests.core.scenario import POLICY, at, card
from tests.core.test_challenger import CHALLENGER, CHALLENGER_TEXT, population
from tests.integration.harness import (
    TOPICS,
    create_topics,
    decoded,
    in_process_settings,
    lineguard,
    produce,
    read_topic,
    wait_for,
)
from workers.broker import EmbeddedBroker
from workers.core.engine import Engine, Step
from workers.core.policy import Policy
from workers.metrics import Metrics
from workers.replay import replay_events
from workers.stream import processor as processor_module
from workers.stream.service import StreamService
from workers.stream.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration]

INFO = 'lineguard_policy_info{name="challenger",version="challenger-1"}'


def _disagreement(kind: str, reason: str) -> str:
    return f'lineguard_challenger_disagreements_total{{kind="{kind}",reason="{reason}"}}'


def expected(events: list[Event], policy: Policy, role: str) -> list[dict[str, Any]]:
    """What a replay of ``events`` under ``policy`` outputs, as records of ``role``."""
    result = replay_events(events, policy)
    outputs: list[Output] = [*result.decisions, *result.flags]
    return _sorted(o.model_dump(mode="json") | {"policy_role": role} for o in outputs)


def _sorted(records: Any) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r.get("decision_id") or r["flag_id"])


def offline(live: list[dict[str, Any]], shadow: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """From the topics' dumps: each closure made under one policy and never under the other."""

    def closures(records: list[dict[str, Any]]) -> dict[str, list[str]]:
        return {
            r["decision_id"]: [reason["code"] for reason in r["reasons"]]
            for r in records
            if r.get("decision") == "close_line"
        }

    counts: Counter[tuple[str, str]] = Counter()
    mine, theirs = closures(live), closures(shadow)
    for kind, own, other in (("challenger_only", theirs, mine), ("live_only", mine, theirs)):
        for decision_id, codes in own.items():
            if decision_id not in other:
                counts.update((kind, code) for code in codes)
    return counts


async def _dump(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    return decoded(await read_topic(bootstrap, topic, lambda r: len(r) >= count))


def metric(worker: WorkerProcess, name: str) -> float:
    return worker.metrics().get(name, 0.0)


def publish_challenger(bootstrap: str, directory: Path) -> None:
    """``lineguard policy publish`` of the challenger, as an analyst runs it."""
    challenger_file = directory / "challenger.toml"
    challenger_file.write_text(CHALLENGER_TEXT)
    published = lineguard(
        "policy", "publish", str(challenger_file), "--as", "challenger", "--by", "analyst",
        bootstrap=bootstrap,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr


async def test_a_challenger_writes_only_to_the_shadow_topic_and_counts_its_disagreements(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    publish_challenger(bootstrap, tmp_path)
    worker = workers().start().wait_ready()
    assert metric(worker, INFO) == 1

    events = population(40)
    await produce(bootstrap, events)
    wait_for(lambda: worker.consumed() >= len(events), 60, "every event applied")
    live_expected = expected(events, POLICY, "live")
    shadow_expected = expected(events, CHALLENGER, "challenger")
    disagreement = (_disagreement("live_only", "LOW_CREDIT_SCORE"), 10.0)
    wait_for(lambda: metric(worker, disagreement[0]) == disagreement[1], 30, "counted")

    shadow = await _dump(bootstrap, TOPICS.shadow_decisions, len(shadow_expected))
    decisions = [r for r in live_expected if "decision_id" in r]
    live = await _dump(bootstrap, TOPICS.decisions, len(decisions))
    flags = await _dump(bootstrap, TOPICS.flags, len(live_expected) - len(decisions))
    assert _sorted(shadow) == shadow_expected
    assert _sorted(live + flags) == live_expected  # nothing of the challenger's, all of live's
    assert shadow != [] and {r["policy_role"] for r in shadow} == {"challenger"}

    counted = offline(live, shadow)
    assert counted == Counter(
        {("challenger_only", "CARD_BIND_UNBIND"): 10, ("live_only", "LOW_CREDIT_SCORE"): 10}
    )
    for (kind, reason), n in counted.items():
        assert metric(worker, _disagreement(kind, reason)) == n
    labels = '{decision="close_line",reason="CARD_BIND_UNBIND"}'
    assert metric(worker, f"lineguard_challenger_decisions_total{labels}") == 10
    assert metric(worker, f"lineguard_decisions_total{labels}") == 0


async def test_a_challenger_published_mid_stream_runs_until_withdrawn(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """Published between two populations, the challenger sees only the second (forked from
    the live state then); withdrawn, it stops: the third population has no shadow output."""
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    worker = workers().start().wait_ready()
    first, second, third = population(8, "a"), population(8, "b", 10), population(8, "c", 20)
    await produce(bootstrap, first)
    wait_for(lambda: worker.consumed() >= len(first), 60, "the first population applied")
    assert metric(worker, INFO) == 0

    publish_challenger(bootstrap, tmp_path)
    wait_for(lambda: metric(worker, INFO) == 1, 30, "the worker runs the challenger")
    await produce(bootstrap, second)
    done = len(first) + len(second)
    wait_for(lambda: worker.consumed() >= done, 60, "the second population applied")

    withdrawn = lineguard("policy", "withdraw", "challenger", bootstrap=bootstrap)
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert "withdrew challenger challenger-1" in withdrawn.stdout
    wait_for(lambda: metric(worker, INFO) == 0, 30, "the worker stops the challenger")
    shown = lineguard("policy", "show", bootstrap=bootstrap)
    assert "challenger:" not in shown.stdout
    await produce(bootstrap, third)
    wait_for(lambda: worker.consumed() >= done + len(third), 60, "the third population applied")

    shadow_expected = expected(second, CHALLENGER, "challenger")
    shadow = await _dump(bootstrap, TOPICS.shadow_decisions, len(shadow_expected))
    assert _sorted(shadow) == shadow_expected
    everything = [*first, *second, *third]
    live_decisions = [r for r in expected(everything, POLICY, "live") if "decision_id" in r]
    live = await _dump(bootstrap, TOPICS.decisions, len(live_decisions))
    assert _sorted(live) == live_decisions
    again = await _dump(bootstrap, TOPICS.shadow_decisions, len(shadow_expected))
    assert len(again) == len(shadow_expected)  # nothing more once withdrawn


class ShadowDefect(Engine):
    """An engine whose challenger copy fails on one user's events."""

    def apply(self, event: Event, *, fire_due: bool = True) -> Step:
        if self.role == "challenger" and event.user_id.startswith("boom"):
            raise ZeroDivisionError("a defect of the challenger")
        return super().apply(event, fire_due=fire_due)


async def test_a_failing_challenger_never_touches_live(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(processor_module, "Engine", ShadowDefect)
    settings = in_process_settings(broker.bootstrap, tmp_path, partitions=1)
    await create_topics(broker.bootstrap, partitions=1)
    service = StreamService(settings, POLICY, Metrics())
    await service.on_start()
    assert service.processor is not None
    service.processor.start_with(POLICY, CHALLENGER)
    try:
        failing, after = population(4, "boom"), population(4, "later", 10)
        await produce(broker.bootstrap, failing, settings)
        decisions = [r for r in expected(failing, POLICY, "live") if "decision_id" in r]
        live = await _dump(broker.bootstrap, TOPICS.decisions, len(decisions))
        assert _sorted(live) == decisions  # live as if no challenger ran
        registry = service.metrics.registry
        failures = "lineguard_challenger_failures_total"

        def counted() -> bool:
            return (registry.get_sample_value(failures) or 0) >= 1

        # waited for in a thread: the worker runs on this event loop
        await asyncio.to_thread(wait_for, counted, 30, "the failure counted")
        await produce(broker.bootstrap, after, settings)
        shadow_expected = expected(after, CHALLENGER, "challenger")
        shadow = await _dump(broker.bootstrap, TOPICS.shadow_decisions, len(shadow_expected))
        assert _sorted(shadow) == shadow_expected  # forked again, it goes on
        assert service.failure is None
        letters = [
            sample.value
            for family in registry.collect()
            if family.name == "lineguard_dead_letters"
            for sample in family.samples
            if sample.name.endswith("_total")
        ]
        assert sum(letters) == 0
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await service.on_stop()


async def test_with_rocksdb_a_challenger_forks_from_the_stores_snapshot(
    broker: EmbeddedBroker, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    """With RocksDB and a live set of 4 users per worker, the users known before the
    challenger is published are read through a snapshot of the store: their line states
    carry over (a line live closed before stays closed for the challenger), exactly as the
    core's fork does."""
    bootstrap = broker.bootstrap
    await create_topics(bootstrap)
    worker = workers(store="rocksdb", live_users="4").start().wait_ready()
    first = population(16, "a")
    await produce(bootstrap, first)
    wait_for(lambda: worker.consumed() >= len(first), 60, "the first population applied")
    publish_challenger(bootstrap, tmp_path)
    wait_for(lambda: metric(worker, INFO) == 1, 30, "the worker runs the challenger")
    # every earlier user binds and unbinds a card within the hour: the challenger closes
    # those whose line is open, and not those live closed before it was published
    quick = [
        item
        for n in range(16)
        for item in (
            card(at(10, hours=n), f"a{n}-q", user=f"a{n}"),
            card(at(10, hours=n, seconds=600), f"a{n}-q", "unbind", user=f"a{n}"),
        )
    ]
    second = sorted([*quick, *population(8, "b", 10)], key=lambda item: item.occurred_at)
    await produce(bootstrap, second)
    wait_for(lambda: worker.consumed() >= len(first) + len(second), 60, "all applied")

    live = Engine(POLICY)
    for item in first:
        live.apply(item)
    fork = live.fork(CHALLENGER)
    forked = [o for item in second for o in fork.apply(item).outputs]
    shadow_expected = _sorted(o.model_dump(mode="json") for o in forked)
    closing = {d["user_id"] for d in shadow_expected if d.get("decision") == "close_line"}
    earlier = {user for user in closing if user.startswith("a")}
    assert 0 < len(earlier) < 16  # some earlier users' lines were open, some closed before
    shadow = await _dump(bootstrap, TOPICS.shadow_decisions, len(shadow_expected))
    assert _sorted(shadow) == shadow_expected
