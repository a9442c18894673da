"""Event time, out-of-order input, duplicates, determinism and independence between users."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date, datetime, timedelta

import pytest

from schemas.events import Event
from schemas.outputs import Decision
from workers.core.engine import Engine
from workers.replay import replay_events

from .scenario import (
    DAY,
    HOUR,
    POLICY,
    SECOND,
    Output,
    Timeline,
    at,
    bill,
    card,
    closes,
    codes,
    cycle,
    decisions,
    drawdown,
    event,
    flags,
    login,
    midnight,
    outflow,
    pay,
    profile,
    restores,
    run,
    score,
)

D = at(10)

# --- out-of-order events within windows ---------------------------------------------------

WINDOWED: dict[str, tuple[str, list[Event]]] = {
    "devices-24h": (
        "DEVICE_SWITCHING",
        [login(at(hours=h), f"d{h}") for h in (0, 1, 2, 24)],
    ),
    "devices-7d": (
        "DEVICE_SWITCHING",
        [login(at() + i * 33.6 * HOUR, f"w{i}") for i in range(6)],
    ),
    "churn-30d": (
        "ACCOUNT_INFO_CHURN",
        [
            card(at(0), "c1"),
            profile(at(10), "phone"),
            profile(at(20), "identity"),
            card(at(30), "c1", "unbind"),
        ],
    ),
    "cash-out": (
        "CASH_OUT",
        [
            card(D - DAY, "c1"),
            drawdown(D, "L1"),
            outflow(D + HOUR, "500.00", "c1"),
            outflow(D + DAY, "300.00", "c1"),
        ],
    ),
    "score-swiping": (
        "SCORE_SWIPING",
        cycle(at(0), "L1", HOUR) + cycle(at(15), "L2", 48 * HOUR) + cycle(at(28), "L3", HOUR),
    ),
    "early-repayment": (
        "FREQUENT_EARLY_REPAYMENT",
        [e for i, d in enumerate((0, 3, 6, 9)) for e in cycle(at(d), f"L{i}", 3 * DAY)],
    ),
}


def orders(events: list[Event], count: int = 24) -> list[list[Event]]:
    """Up to ``count`` arrival orders, reversed order first, the rest seeded shuffles."""
    rng = random.Random(7)
    found = [list(reversed(events))]
    if len(events) <= 4:
        found += [list(p) for p in itertools.permutations(events)]
    while len(found) < count:
        shuffled = list(events)
        rng.shuffle(shuffled)
        found.append(shuffled)
    return found[:count]


@pytest.mark.parametrize("signal,events", WINDOWED.values(), ids=WINDOWED.keys())
def test_out_of_order_events_still_fill_their_windows(signal: str, events: list[Event]) -> None:
    in_order = run(sorted(events, key=lambda e: e.occurred_at))
    [became_true] = [f.raised_at for f in flags(in_order.outputs, signal)]
    for arrival in orders(events):
        timeline = run(arrival)
        raised = flags(timeline.outputs, signal)
        assert len(raised) == 1, [e.event_id for e in arrival]
        # Raised, and the line closed, when the condition became true in event time, whatever
        # the arrival order; the trigger is the event whose arrival made it known.
        [closing] = closes(timeline.outputs)
        trigger = {e.event_id: e for e in arrival}[closing.trigger_event_id or ""]
        assert raised[0].raised_at == closing.decided_at == became_true
        assert trigger.occurred_at <= became_true
        assert raised[0].trigger_event_id == trigger.event_id
        assert raised[0].flag_id == flags(in_order.outputs, signal)[0].flag_id
        assert codes(closing) == [signal]


OUTSIDE: dict[str, tuple[str, list[Event]]] = {
    "device-25h-before": (
        "DEVICE_SWITCHING",
        [login(at(hours=h), f"d{h}") for h in (0, 1, 2, -25)],
    ),
    "churn-31d-before": (
        "ACCOUNT_INFO_CHURN",
        [
            card(at(0), "c1"),
            profile(at(1), "phone"),
            profile(at(2), "identity"),
            card(at(-29), "c1", "unbind"),
        ],
    ),
    "bind-after-the-outflow": (
        "CASH_OUT",
        [drawdown(D, "L1"), outflow(D + HOUR, "800.00", "c1"), card(D + HOUR + SECOND, "c1")],
    ),
}


@pytest.mark.parametrize("signal,events", OUTSIDE.values(), ids=OUTSIDE.keys())
def test_late_events_outside_the_window_do_not_count(signal: str, events: list[Event]) -> None:
    for arrival in orders(events):
        assert flags(run(arrival).outputs, signal) == []


def test_a_late_bind_completes_a_cash_out() -> None:
    # The bind happened before the outflow but arrives after it: the cash-out happened when
    # the money went out, and the bind's arrival is what made it known.
    events = [drawdown(D, "L1"), outflow(D + 2 * HOUR, "800.00", "c1"), card(D + HOUR, "c1")]
    timeline = run(events)
    [closing] = closes(timeline.outputs)
    assert codes(closing) == ["CASH_OUT"]
    assert closing.trigger_event_id == events[-1].event_id
    assert closing.decided_at == D + 2 * HOUR


def test_an_older_credit_score_counts_at_its_time_but_does_not_replace_the_latest() -> None:
    # The score was 500 from day 1 to day 5: the line closes at day 1 in any arrival order,
    # and the latest score stays 700.
    late = run([score(at(5), 700), score(at(1), 500)])
    [closing] = closes(late.outputs)
    assert closing.decided_at == at(1)
    assert late.engine.state_of("u1").score == 700  # type: ignore[union-attr]
    assert [d.decided_at for d in closes(run([score(at(1), 500), score(at(5), 700)]).outputs)] == [
        at(1)
    ]
    timeline = run([score(at(1), 700), score(at(5), 500)])
    assert [d.decided_at for d in closes(timeline.outputs)] == [at(5)]


@pytest.mark.parametrize("settles", [False, True], ids=["repayment", "settlement"])
def test_a_payment_arriving_before_its_bill_still_pays_it(settles: bool) -> None:
    events = [bill(at(0), "L1", 1, date(2026, 3, 10)), pay(at(1), "L1", settles=settles)]
    for arrival in orders(events):
        assert flags(run(arrival, until=at(60)).outputs) == []


# --- duplicates --------------------------------------------------------------------------

DUPLICATED: dict[str, list[Event]] = {
    # Each list reaches a threshold only if a redelivered copy counted twice.
    "churn-change": [card(at(0), "c1"), profile(at(1), "phone"), profile(at(2), "identity")],
    "cash-out-outflow": [card(D - DAY, "c1"), drawdown(D, "L1"), outflow(D + HOUR, "400.00", "c1")],
    "quick-cycle": cycle(at(0), "L1", HOUR) + cycle(at(5), "L2", HOUR),
    "early-settlement": [
        e for i, d in enumerate((0, 30, 60)) for e in cycle(at(d), f"L{i}", 3 * DAY)
    ],
}


@pytest.mark.parametrize("events", DUPLICATED.values(), ids=DUPLICATED.keys())
def test_a_redelivered_event_is_ignored_and_counted(events: list[Event]) -> None:
    copies = [events[-1]] * 3
    result = replay_events([*events, *copies], POLICY)
    assert result.duplicates == 3
    assert result.events == len(events) + 3
    assert result.flags == []
    assert result.decisions == []


def test_a_duplicate_changes_nothing_even_with_other_content() -> None:
    original = drawdown(at(0), "L1", eid="same-id")
    copy = outflow(at(0), "900.00", "c1", eid="same-id")
    timeline = Timeline()
    timeline.apply(card(at(-1), "c1"), original)
    assert timeline.apply(copy) == []
    assert timeline.duplicates == 1
    assert timeline.engine.apply(copy).duplicate


@pytest.mark.parametrize(
    "between",
    [
        [login(at(seconds=i + 1)) for i in range(999)],
        [login(at(days=d)) for d in range(1, 31)],
    ],
    ids=["999-ids-between", "30-days-between"],
)
def test_ids_of_the_last_30_days_and_1000_events_are_remembered(between: list[Event]) -> None:
    original = card(at(0), "c1", eid="remembered")
    timeline = Timeline()
    timeline.apply(original, *between)
    assert timeline.engine.apply(original).duplicate


def test_duplicates_are_per_user_event_ids() -> None:
    first = login(at(0), eid="shared", user="u1")
    second = login(at(0), eid="shared", user="u2")
    result = replay_events([first, second], POLICY)
    assert result.duplicates == 0


# --- decided_at / raised_at --------------------------------------------------------------


def test_times_come_from_the_event_in_utc_whatever_its_offset() -> None:
    events = [
        event("login", at(0), device_id="a", occurred_at="2026-03-02T17:00:00+08:00"),
        event("login", at(0), device_id="b", occurred_at="2026-03-02T05:00:00-05:00"),
        event("login", at(0), device_id="c", occurred_at="2026-03-02T12:00:00+01:00"),
        event("login", at(0), device_id="d", occurred_at="2026-03-03T07:30:00+08:00"),
    ]
    [flag] = flags(run(events).outputs, "DEVICE_SWITCHING")
    assert flag.raised_at == datetime.fromisoformat("2026-03-02T23:30:00+00:00")


def test_overdue_days_are_utc_calendar_days() -> None:
    # Paid at 07:59 on 2026-03-11 in UTC+08:00 = 23:59 UTC on the due date: not overdue.
    due = date(2026, 3, 10)
    paid = event(
        "repayment",
        at(0),
        kind="repayment",
        loan_id="L1",
        product="huabei",
        amount="100",
        occurred_at="2026-03-11T07:59:59+08:00",
    )
    timeline = run([bill(at(0), "L1", 1, due, product="huabei"), paid], until=at(60))
    assert flags(timeline.outputs, "OVERDUE") == []


@pytest.mark.parametrize("clock_moves", ["advance", "later-event"])
def test_time_triggered_outputs_carry_the_deadline_not_the_moment_noticed(
    clock_moves: str,
) -> None:
    due = date(2026, 3, 10)
    timeline = Timeline()
    timeline.apply(bill(at(0), "L1", 1, due))
    noticed = midnight(due) + 45 * DAY + 13 * HOUR
    if clock_moves == "advance":
        timeline.advance(noticed)
    else:
        timeline.apply(login(noticed, user="someone-else"))
    assert [f.raised_at for f in flags(timeline.outputs, "OVERDUE")] == [
        midnight(due) + n * DAY for n in (1, 7, 15, 30)
    ]
    [closing] = closes(timeline.outputs)
    assert closing.decided_at == midnight(due) + 30 * DAY
    assert closing.trigger_event_id is None


def test_a_deadline_at_the_event_instant_fires_before_the_event() -> None:
    # The cooling period ends exactly when a fourth account change arrives: the eligibility
    # is decided first (deadline first), then the change closes the line again.
    close_at = at(100)
    review = close_at + 90 * DAY
    events = [login(close_at - (3 - i) * HOUR, f"x{i}") for i in range(4)]
    events += [login(review - DAY), card(review - 2 * HOUR, "c"), profile(review - HOUR, "phone")]
    events += [profile(review - HOUR / 2, "identity"), card(review, "c", "unbind")]
    timeline = run(events, until=review)
    assert [(d.decision, d.decided_at) for d in decisions(timeline.outputs)] == [
        ("close_line", close_at),
        ("restore_eligibility", review),
        ("close_line", review),
    ]


# --- independence between users, determinism, restart from saved state ----------------------


def story(user: str) -> list[Event]:
    """A user with overdue milestones, a close, a restore, a re-close and inactivity."""
    start = at(0)
    due = date(2026, 3, 20)
    events = [
        login(start, "p1", user=user),
        drawdown(start + HOUR, f"{user}-L1", user=user),
        bill(start + 2 * HOUR, f"{user}-L1", 1, due, user=user),
        pay(midnight(due) + 3 * DAY, f"{user}-L1", user=user),
        *[login(at(40) + i * HOUR, f"{user}-d{i}", user=user) for i in range(4)],
        login(at(120), "p1", user=user),
        score(at(200), 580, user=user),
        score(at(230), 640, user=user),
        login(at(300), "p1", user=user),
    ]
    return sorted(events, key=lambda e: e.occurred_at)


def noise(moments: list[datetime]) -> list[Event]:
    return [login(moment, "n", user="other") for moment in moments]


def outputs_of(outputs: list[Output], user: str) -> list[dict[str, object]]:
    return [o.model_dump(mode="json") for o in outputs if o.user_id == user]


STORY_A = story("a")
STORY_B = story("b")


def test_a_users_decisions_do_not_depend_on_other_users_traffic() -> None:
    alone = run(STORY_A, until=at(500))
    mine = outputs_of(alone.outputs, "a")
    assert len(decisions(alone.outputs)) >= 4  # close, restore, close, restore
    # Another user's events land on every one of a's deadlines and between them.
    moments = [o.decided_at if isinstance(o, Decision) else o.raised_at for o in alone.outputs]
    moments += [at(d) for d in range(0, 500, 7)]
    mixed = sorted([*STORY_A, *noise(moments)], key=lambda e: e.occurred_at)
    together = run(mixed, until=at(500))
    assert outputs_of(together.outputs, "a") == mine
    # A user with the same story at the same times: same decisions, own ids.
    both = sorted([*STORY_A, *STORY_B], key=lambda e: e.occurred_at)
    shared = run(both, until=at(500))
    assert outputs_of(shared.outputs, "a") == mine
    theirs = decisions(o for o in shared.outputs if o.user_id == "b")
    assert [(d.decision, d.decided_at) for d in theirs] == [
        (d.decision, d.decided_at) for d in decisions(alone.outputs)
    ]


def test_ids_are_deterministic_across_runs_and_redeliveries() -> None:
    events = sorted([*STORY_A, *STORY_B], key=lambda e: e.occurred_at)
    first = run(events, until=at(500))
    second = run(list(events), until=at(500))
    redelivered = run([e for e in events for _ in (0, 1)], until=at(500))
    dump = [o.model_dump(mode="json") for o in first.outputs]
    assert [o.model_dump(mode="json") for o in second.outputs] == dump
    assert [o.model_dump(mode="json") for o in redelivered.outputs] == dump
    ids = [d.decision_id for d in decisions(first.outputs)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 5 for i in ids)
    flag_ids = [f.flag_id for f in flags(first.outputs)]
    assert len(set(flag_ids)) == len(flag_ids)


def test_decision_ids_depend_on_user_kind_and_closure_cycle() -> None:
    timeline = run(STORY_A, until=at(500))
    keys = [(d.decision, d.decision_id) for d in decisions(timeline.outputs)]
    closes_ = [i for kind, i in keys if kind == "close_line"]
    restores_ = [i for kind, i in keys if kind == "restore_eligibility"]
    assert len(closes_) == len(set(closes_)) >= 2
    assert len(restores_) == len(set(restores_)) >= 2
    other = run(STORY_B, until=at(500))
    assert not {d.decision_id for d in decisions(other.outputs)} & {i for _, i in keys}


@pytest.mark.parametrize("cut", [3, 6, 9, 11])
def test_restarting_from_saved_state_changes_nothing(cut: int) -> None:
    events = sorted([*STORY_A, *STORY_B], key=lambda e: e.occurred_at)
    whole = run(events, until=at(500))
    first = Engine(POLICY)
    outputs: list[Output] = []
    for item in events[:cut]:
        outputs += first.apply(item).outputs
    saved = first.take_dirty()
    assert first.take_dirty() == {}
    second = Engine(POLICY)
    for user, blob in saved.items():
        second.restore(user, blob)
    for item in events[cut:]:
        outputs += second.apply(item).outputs
    outputs += second.advance(at(500), final=True)
    assert [o.model_dump(mode="json") for o in outputs] == [
        o.model_dump(mode="json") for o in whole.outputs
    ]


def test_state_stays_bounded_under_a_long_history() -> None:
    def year(offset: int) -> list[Event]:
        events: list[Event] = []
        for day in range(0, 360, 3):
            when = at(offset + day)
            events.append(login(when, f"dev-{day % 9}"))
            events.append(outflow(when + HOUR, "5.00", f"card-{day % 5}"))
            if day % 30 == 0:
                events += cycle(when, f"L{offset + day}", 5 * DAY, term=6)
                events.append(card(when + 2 * HOUR, f"card-{day % 5}"))
        return sorted(events, key=lambda e: e.occurred_at)

    timeline = Timeline()
    sizes = []
    for offset in range(0, 360 * 10, 360):
        timeline.apply(*year(offset))
        sizes.append(len(timeline.engine.take_dirty()["u1"]))
    # Ten years of the same habits: the state stops growing once its bounded sets are full.
    assert max(sizes) <= 16_384, sizes
    assert max(sizes[-4:]) - min(sizes[-4:]) <= 64, sizes


def test_restore_decision_and_close_are_consistent_with_the_story() -> None:
    timeline = run(STORY_A, until=at(500))
    kinds = [(d.decision, d.decided_at) for d in decisions(timeline.outputs)]
    assert kinds[0] == ("close_line", at(40) + 3 * HOUR)
    assert kinds[1] == ("restore_eligibility", at(40) + 3 * HOUR + 90 * DAY)
    assert kinds[2][0] == "close_line"
    assert codes(decisions(timeline.outputs)[2]) == ["LOW_CREDIT_SCORE"]
    assert restores(timeline.outputs)[-1].decided_at >= at(230)
    assert timedelta(0) < kinds[2][1] - kinds[1][1]
