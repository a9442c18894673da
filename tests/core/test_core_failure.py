"""``decide`` updates a user's state in place, atomically per event: when it fails (a defect
in the core), the state is exactly as it was before the event, and the engine goes on with
every other user as if nothing had happened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemas.events import Event
from schemas.outputs import Output
from tests.core.scenario import POLICY, at, bill, login
from tests.integration.scenarios import in_time_order, reason_histories, restore_history
from workers.core import decide as decide_module
from workers.core.compiled import compile_policy
from workers.core.decide import decide
from workers.core.engine import Engine
from workers.core.rules import BY_CODE
from workers.core.state import UserState, serialize
from workers.core.timeutil import to_us
from workers.sim.generator import SimulationConfig, generate


class Defect(Exception):
    """What the injected failure raises."""


def histories() -> Iterator[Event]:
    """A simulated population (every archetype of the default mix, near misses, duplicates,
    out-of-order repayments) and one user per reason code."""
    yield from generate(SimulationConfig(users=150, days=200, seed=5, duplicate_rate=0.01))
    yield from in_time_order([*reason_histories(prefix="h").values(), restore_history("h-r")])


def test_a_failure_after_all_of_decide_leaves_the_state_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The latest possible failure (after every fact, rule and the lifecycle ran, and the
    next deadline was set) is undone on every event of a varied history: so is any
    earlier one, which changed a part of the same fields."""
    real_schedule = decide_module.schedule
    failing = False

    def schedule_then_fail(state: UserState, rules: object) -> None:
        real_schedule(state, rules)  # type: ignore[arg-type]
        if failing:
            raise Defect("after everything")

    monkeypatch.setattr(decide_module, "schedule", schedule_then_fail)
    engine = Engine(POLICY)
    clean = Engine(POLICY)
    rules = compile_policy(POLICY)
    checked = 0
    for event in histories():
        state = engine.state_of(event.user_id)
        moment = to_us(event.occurred_at)
        direct = (
            state is not None
            and event.event_id not in state.seen
            and (state.next_deadline is None or moment < state.next_deadline)
        )
        if state is not None and direct:
            before = serialize(state)
            failing = True
            with pytest.raises(Defect):
                decide(state, event, rules, moment)
            failing = False
            assert serialize(state) == before, f"{event.type} {event.event_id}"
            checked += 1
        assert engine.apply(event).outputs == clean.apply(event).outputs
    assert checked > 10_000
    until = at(400)
    assert engine.advance(until, final=True) == clean.advance(until, final=True)
    assert engine.take_dirty() == clean.take_dirty()


def test_a_rule_failing_midway_leaves_the_state_as_it_was_and_other_users_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    devices = BY_CODE["DEVICE_SWITCHING"]
    real = type(devices).on_event

    def on_event_then_fail(self: object, step: decide_module.Step, event: Event) -> None:
        real(devices, step, event)
        if event.user_id == "boom":
            raise Defect("midway")

    monkeypatch.setattr(type(devices), "on_event", on_event_then_fail)
    others = in_time_order(reason_histories(prefix="ok"))
    boom = [
        login(event.occurred_at, f"dev-{index}", user="boom", eid=f"boom-{index}")
        for index, event in enumerate(others)
    ]
    engine, clean = Engine(POLICY), Engine(POLICY)
    outputs: list[Output] = []
    failures = 0
    for mine, theirs in zip(boom, others, strict=True):
        before = engine.state_of("boom")
        before_bytes = None if before is None else serialize(before)
        try:
            outputs += engine.apply(mine).outputs
        except Defect:
            failures += 1
            state = engine.state_of("boom")
            assert state is not None
            assert before_bytes is None or serialize(state) == before_bytes
        outputs += engine.apply(theirs).outputs
    outputs += engine.advance(at(400), final=True)
    expected = [o for e in others for o in clean.apply(e).outputs]
    expected += clean.advance(at(400), final=True)
    assert failures == len(boom)
    assert outputs == expected
    assert {o.user_id for o in outputs} == {e.user_id for e in others}


def test_deadlines_fired_before_a_failure_are_handed_out_by_the_next_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An event moves the clock and fires other users' deadlines before its own user's
    turn: if that turn fails, what they produced is not lost."""
    history = [bill(at(0), "L1", 1, (at(5)).date(), user="u1")]
    late = login(at(60), "dev-1", user="boom")
    after = login(at(61), "dev-1", user="u2")
    clean = Engine(POLICY)
    expected = [o for e in [*history, late, after] for o in clean.apply(e).outputs]

    real_decide = decide_module.decide

    def failing_decide(state: UserState, event: Event, *args: object) -> object:
        if event.user_id == "boom":
            raise Defect("boom")
        return real_decide(state, event, *args)  # type: ignore[arg-type]

    engine = Engine(POLICY)
    outputs = [o for e in history for o in engine.apply(e).outputs]
    monkeypatch.setattr("workers.core.engine.decide", failing_decide)
    with pytest.raises(Defect):
        engine.apply(late)
    outputs += engine.apply(after).outputs
    overdue = [o for o in expected if getattr(o, "signal", None) == "OVERDUE"]
    assert len(overdue) == 4  # days 1, 7, 15 and 30, fired by the failed event's clock
    assert outputs == [o for o in expected if o.user_id != "boom"]
