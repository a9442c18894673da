"""Event time with grace: deadlines wait for events dated before them; late ones correct.

Table-driven, one engine per case, time injected. "Arrives at" means the clock (the largest
``occurred_at`` seen, moved here by another user's event) when the event reaches the core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest

from schemas.events import Event
from schemas.outputs import Decision, Flag
from tests.core.scenario import (
    DAY,
    HOUR,
    POLICY,
    Timeline,
    at,
    bill,
    closes,
    codes,
    decisions,
    drawdown,
    flags,
    login,
    midnight,
    pay,
    restores,
    score,
)
from workers.core.engine import Engine
from workers.core.policy import PolicyError, parse_policy
from workers.core.state import MAX_INSTALLMENTS, MAX_WAITING, deserialize, serialize

GRACE = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)
DUE = date(2026, 3, 10)


def overdue_day(n: int) -> datetime:
    """00:00 UTC of overdue day ``n`` of an installment due on ``DUE``."""
    return midnight(DUE) + n * DAY


def tick(moment: datetime) -> Event:
    """Another user's event: all it does here is move the clock to ``moment``."""
    return login(moment, "clock", user="someone-else")


def deliver(timeline: Timeline, decisive: Event, arrives_at: datetime) -> None:
    """The clock reaches ``arrives_at`` first, then ``decisive`` arrives."""
    timeline.apply(tick(arrives_at))
    timeline.apply(decisive)


def mine(outputs: list[Flag | Decision]) -> list[Flag | Decision]:
    return [o for o in outputs if o.user_id == "u1"]


@dataclass(frozen=True)
class Deadline:
    """A deadline kind: the history before it, its instant, and an event that, dated just
    before the deadline, prevents what it would fire."""

    history: Callable[[], list[Event]]
    deadline: datetime
    decisive: Callable[[datetime], Event]
    fires: tuple[str, ...]  # the flag signals the deadline raises without the decisive event
    closes: bool


def _installment() -> list[Event]:
    return [login(at(0)), drawdown(at(0, 1), "L1"), bill(at(1), "L1", 1, DUE)]


DEADLINES = {
    "overdue-day-1": Deadline(
        _installment,
        overdue_day(1),
        lambda when: pay(when, "L1", installment=1),
        ("OVERDUE",),
        False,
    ),
    "serious-overdue-day-30": Deadline(
        lambda: [*_installment(), login(overdue_day(20))],
        overdue_day(30),
        lambda when: pay(when, "L1", installment=1),
        ("OVERDUE", "SERIOUS_OVERDUE"),
        True,
    ),
    "inactivity": Deadline(
        lambda: [login(at(0)), drawdown(at(1), "L1", term=12)],
        at(1) + 90 * DAY,
        lambda when: drawdown(when, "L2"),
        ("INACTIVITY",),
        True,
    ),
}


def _before_deadline(kind: Deadline) -> Timeline:
    timeline = Timeline()
    timeline.apply(*kind.history())
    return timeline


@pytest.mark.parametrize("kind", DEADLINES.values(), ids=DEADLINES.keys())
def test_a_decisive_event_arriving_within_grace_prevents_the_deadline(kind: Deadline) -> None:
    timeline = _before_deadline(kind)
    before = len(timeline.outputs)
    deliver(timeline, kind.decisive(kind.deadline - 5 * MINUTE), kind.deadline + 5 * MINUTE)
    timeline.apply(tick(kind.deadline + DAY))  # the clock moves far past the grace
    fired = mine(timeline.outputs[before:])
    assert [f.signal for f in flags(fired) if f.raised_at == kind.deadline] == []
    assert closes(fired) == []


@pytest.mark.parametrize("kind", DEADLINES.values(), ids=DEADLINES.keys())
def test_without_the_decisive_event_the_deadline_fires_after_its_grace(kind: Deadline) -> None:
    timeline = _before_deadline(kind)
    before = len(timeline.outputs)
    timeline.apply(tick(kind.deadline + GRACE - timedelta(microseconds=1)))
    assert mine(timeline.outputs[before:]) == []  # still within grace
    timeline.apply(tick(kind.deadline + GRACE))
    fired = mine(timeline.outputs[before:])
    assert sorted({f.signal for f in flags(fired)}) == sorted(kind.fires)
    assert all(f.raised_at == kind.deadline and f.trigger_event_id is None for f in flags(fired))
    if kind.closes:
        [closing] = closes(fired)
        assert closing.decided_at == kind.deadline
        assert closing.trigger_event_id is None


@pytest.mark.parametrize("kind", DEADLINES.values(), ids=DEADLINES.keys())
def test_a_decisive_event_beyond_grace_is_late_and_retracts(kind: Deadline) -> None:
    timeline = _before_deadline(kind)
    before = len(timeline.outputs)
    timeline.apply(tick(kind.deadline + HOUR))
    fired = mine(timeline.outputs[before:])
    late = kind.decisive(kind.deadline - 5 * MINUTE)
    step = timeline.engine.apply(late)
    assert step.late
    corrections = mine(step.outputs)
    retracted = {f.flag_id for f in flags(fired)}
    retractions = [f for f in flags(corrections) if f.retracts is not None]
    assert {f.retracts for f in retractions} == retracted
    for retraction in retractions:
        assert retraction.trigger_event_id == late.event_id
        assert retraction.raised_at == late.occurred_at
    if kind.closes:
        [closing] = closes(fired)
        [withdrawn] = decisions(corrections, "close_line_retracted")
        assert withdrawn.supersedes == closing.decision_id
        assert codes(withdrawn) == ["LATE_DATA_CORRECTION"]
        assert withdrawn.reasons[0].evidence["late_event_id"] == late.event_id
        assert withdrawn.reasons[0].evidence["retracted_reasons"] == codes(closing)
        assert withdrawn.decided_at == late.occurred_at
        assert withdrawn.trigger_event_id == late.event_id
        assert withdrawn.line_state == "open"
        assert timeline.engine.status("u1")["line_state"] == "open"  # type: ignore[index]
    assert timeline.engine.take_counts()[1] == {late.type: 1}


def test_flags_that_still_hold_are_kept_when_a_closure_is_withdrawn() -> None:
    # Overdue days 1, 7 and 15 were real; only day 30 and the closure are withdrawn.
    timeline = Timeline()
    timeline.apply(*_installment(), tick(overdue_day(30) + HOUR))
    overdue = flags(mine(timeline.outputs), "OVERDUE")
    assert [f.overdue_days for f in overdue] == [1, 7, 15, 30]
    corrections = timeline.apply(pay(overdue_day(30) - MINUTE, "L1", installment=1))
    retracted = {f.retracts for f in flags(corrections)}
    assert overdue[3].flag_id in retracted
    assert not retracted & {f.flag_id for f in overdue[:3]}
    assert [d.decision for d in decisions(corrections)] == ["close_line_retracted"]


def test_a_late_event_after_an_event_triggered_closure_only_updates_state() -> None:
    # Closed for a low score; the serious overdue that followed was paid late, before
    # overdue day 30: its flags are retracted, the closure (event-triggered) stays.
    timeline = Timeline()
    timeline.apply(*_installment(), score(at(2), 550), tick(overdue_day(30) + HOUR))
    [closing] = closes(mine(timeline.outputs))
    assert codes(closing) == ["LOW_CREDIT_SCORE"]
    corrections = timeline.apply(pay(overdue_day(30) - MINUTE, "L1", installment=1))
    assert decisions(corrections) == []
    assert {f.signal for f in flags(corrections)} == {"OVERDUE", "SERIOUS_OVERDUE"}
    assert timeline.engine.status("u1")["line_state"] == "closed"  # type: ignore[index]


def test_a_closure_is_withdrawn_only_when_none_of_its_reasons_holds() -> None:
    # Inactivity and a serious overdue fall due at the same midnight and close together;
    # the late payment undoes the overdue, not the inactivity: the closure stands.
    deadline = overdue_day(30)
    start = deadline - 90 * DAY
    timeline = Timeline()
    timeline.apply(login(start), drawdown(start, "L1"), bill(start + DAY, "L1", 1, DUE))
    timeline.apply(tick(deadline + HOUR))
    [closing] = closes(mine(timeline.outputs))
    assert codes(closing) == ["SERIOUS_OVERDUE", "INACTIVITY"]
    corrections = timeline.apply(pay(deadline - MINUTE, "L1", installment=1))
    assert {f.signal for f in flags(corrections)} == {"OVERDUE", "SERIOUS_OVERDUE"}
    assert decisions(corrections) == []
    assert timeline.engine.status("u1")["line_state"] == "closed"  # type: ignore[index]


def test_a_late_event_when_the_cycle_is_over_only_retracts_flags() -> None:
    # Withdrawn only while the line is still in that closure's cycle: once restore-eligible,
    # the late drawdown retracts the INACTIVITY flag and decides nothing.
    kind = DEADLINES["inactivity"]
    timeline = _before_deadline(kind)
    timeline.apply(tick(kind.deadline + HOUR))
    review = kind.deadline + 90 * DAY
    timeline.apply(login(review - DAY), tick(review + HOUR))
    assert [d.decision for d in decisions(mine(timeline.outputs))] == [
        "close_line",
        "restore_eligibility",
    ]
    corrections = timeline.apply(drawdown(kind.deadline - MINUTE, "L-late"))
    assert [f.signal for f in flags(corrections) if f.retracts] == ["INACTIVITY"]
    assert decisions(corrections) == []
    assert timeline.engine.status("u1")["line_state"] == "restore_eligible"  # type: ignore[index]


def test_out_of_order_within_grace_gives_the_sorted_inputs_outputs() -> None:
    # The user's events around each deadline arrive in the wrong order, within grace.
    events = [
        *_installment(),
        login(overdue_day(1) - 3 * MINUTE, "p2"),
        pay(overdue_day(1) - MINUTE, "L1", "40.00", installment=1),
        login(overdue_day(1) + 2 * MINUTE, "p3"),
        pay(overdue_day(7) - MINUTE, "L1", "60.00", installment=1),
        bill(overdue_day(7) + MINUTE, "L1", 2, DUE + timedelta(days=30)),
        login(overdue_day(40) + 3 * MINUTE, "p4"),
    ]
    arrival = [events[i] for i in (0, 1, 2, 5, 3, 4, 7, 6, 8)]
    sorted_run = Timeline().run(events, until=overdue_day(90))
    shuffled = Timeline().run(arrival, until=overdue_day(90))
    assert flags(sorted_run.outputs)  # the history does fire deadlines
    assert sorted(o.model_dump_json() for o in shuffled.outputs) == sorted(
        o.model_dump_json() for o in sorted_run.outputs
    )
    assert shuffled.engine.take_counts()[1] == {}  # nothing was late


def test_events_at_or_after_a_pending_deadline_wait_for_it_and_survive_a_restart() -> None:
    engine = Engine(POLICY)
    for item in _installment():
        engine.apply(item)
    engine.apply(tick(overdue_day(1) + MINUTE))
    step = engine.apply(pay(overdue_day(1) + 2 * MINUTE, "L1", installment=1, eid="after"))
    assert step.waiting and step.outputs == []
    assert engine.waiting_count == 1
    # The state, waiting event included, goes to the changelog and comes back.
    restored = Engine(POLICY)
    for user, blob in engine.take_dirty().items():
        restored.restore(user, blob)
    assert deserialize(serialize(restored.state_of("u1"))).waiting[0][1] == "after"  # type: ignore[arg-type]
    outputs = restored.apply(tick(overdue_day(1) + GRACE)).outputs
    assert [(f.signal, f.raised_at) for f in flags(mine(outputs))] == [("OVERDUE", overdue_day(1))]
    assert restored.waiting_count == 0
    assert restored.status("u1")["unmet_restore_conditions"] == []  # type: ignore[index]


def test_too_many_waiting_events_fire_the_deadline_early_and_count_it() -> None:
    engine = Engine(POLICY)
    for item in _installment():
        engine.apply(item)
    engine.apply(tick(overdue_day(1)))
    for n in range(MAX_WAITING + 1):
        engine.apply(login(overdue_day(1) + n * timedelta(seconds=1), f"d{n % 2}"))
    drops, _ = engine.take_counts()
    assert drops["waiting_events"] == 1
    assert engine.waiting_count == 0
    status = engine.status("u1")
    assert status is not None and status["waiting_events"] == 0
    assert [f["signal"] for f in status["recent_flags"]] == ["OVERDUE"]


def test_replay_until_flushes_every_deadline_without_grace() -> None:
    timeline = Timeline()
    timeline.apply(*_installment(), pay(overdue_day(1), "L1", installment=1, eid="at-deadline"))
    assert timeline.engine.waiting_count == 1
    timeline.advance(overdue_day(1), final=True)
    assert [f.overdue_days for f in flags(mine(timeline.outputs))] == [1]
    assert timeline.engine.waiting_count == 0


def test_restore_waits_while_the_risk_is_still_present() -> None:
    # Six devices a week, week after week: one flag, a closure, and 90 days later still
    # switching, so not eligible; once the window drops under the threshold, the first
    # later event decides.
    timeline = Timeline()
    week = 7 * DAY
    switching = [
        login(at(0) + n * week + k * DAY, f"w{n}-d{k}") for n in range(16) for k in range(6)
    ]
    timeline.apply(*switching)
    [closing] = closes(mine(timeline.outputs))
    review = closing.next_review_at
    assert review is not None and review < at(0) + 16 * week
    timeline.advance(at(0) + 16 * week, final=True)
    assert restores(mine(timeline.outputs)) == []
    status = timeline.engine.status("u1")
    assert status is not None
    unmet = [(u["code"], u["rule"]) for u in status["unmet_restore_conditions"]]
    assert unmet == [("RISK_STILL_PRESENT", "DEVICE_SWITCHING")]
    quiet = at(0) + 16 * week + 8 * DAY  # the 7-day window holds one device
    timeline.apply(login(quiet, "w15-d5"))
    [restore] = restores(mine(timeline.outputs))
    assert restore.decided_at == quiet


def test_every_dropped_item_is_counted() -> None:
    engine = Engine(POLICY)
    engine.apply(drawdown(at(0), "L1", term=12))
    for n in range(MAX_INSTALLMENTS + 3):
        engine.apply(bill(at(1, seconds=n), "L1", n + 1, DUE + timedelta(days=n % 300)))
    drops, _ = engine.take_counts()
    assert drops["installments"] == 3


def test_grace_is_validated() -> None:
    assert parse_policy('[time]\ngrace = "0"\n', "t").time.grace_seconds == 0
    assert parse_policy('[time]\ngrace = "1h30m"\n', "t").time.grace_seconds == 5400
    for bad in ('"15 minutes"', '"-5m"', '"8d"', "15"):
        with pytest.raises(PolicyError, match=r"time\.grace"):
            parse_policy(f"[time]\ngrace = {bad}\n", "t")


def test_zero_grace_fires_when_the_clock_reaches_the_deadline() -> None:
    timeline = Timeline(parse_policy('[time]\ngrace = "0"\n', "t"))
    timeline.apply(*_installment(), tick(overdue_day(1)))
    assert [f.overdue_days for f in flags(mine(timeline.outputs))] == [1]
