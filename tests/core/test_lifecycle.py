"""The credit-line lifecycle: close, cooling, restore eligibility, and a new cycle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest

from schemas.events import Event

from .scenario import (
    DAY,
    HOUR,
    SECOND,
    Timeline,
    at,
    bill,
    card,
    closes,
    codes,
    cycle,
    decisions,
    device_change,
    drawdown,
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

C = at(100)
"""When the line closes in most scenarios."""


def readable(message: str) -> bool:
    """A sentence an agent can read aloud: no placeholders or codes, ends with a full stop."""
    return (
        message[:1].isupper()
        and message.endswith(".")
        and "{" not in message
        and "None" not in message
        and "_" not in message
    )


def devices_at(when: datetime, tag: str = "x") -> list[Event]:
    """Four distinct devices within three hours, the fourth at ``when``: DEVICE_SWITCHING."""
    return [login(when - (3 - i) * HOUR, f"{tag}-device-{i}") for i in range(4)]


def churn_at(when: datetime) -> list[Event]:
    """Four account changes, the fourth at ``when``: ACCOUNT_INFO_CHURN."""
    return [
        card(when - 3 * HOUR, "card-9"),
        profile(when - 2 * HOUR, "phone"),
        profile(when - HOUR, "identity"),
        card(when, "card-9", "unbind"),
    ]


def cash_out_at(when: datetime) -> list[Event]:
    return [
        card(when - 2 * DAY, "card-1"),
        drawdown(when - HOUR, "CO-1"),
        outflow(when, "800.00", "card-1"),
    ]


def swiping_at(when: datetime) -> list[Event]:
    events = [*cycle(when - 20 * DAY - HOUR, "Q1", HOUR)]
    events += cycle(when - 10 * DAY - HOUR, "Q2", HOUR)
    events += cycle(when - HOUR, "Q3", HOUR)
    return events


def early_at(when: datetime) -> list[Event]:
    events: list[Event] = []
    for number, days in enumerate((60, 40, 20, 0), start=1):
        events += cycle(when - days * DAY - 3 * DAY, f"E{number}", 3 * DAY)
    return events


def low_score_at(when: datetime) -> list[Event]:
    return [login(when - DAY), score(when, 550), score(when + 10 * DAY, 650)]


def inactivity_at(when: datetime) -> list[Event]:
    return [login(when - 90 * DAY)]


CLOSERS: dict[str, tuple[Callable[[datetime], list[Event]], int]] = {
    "DEVICE_SWITCHING": (devices_at, 90),
    "ACCOUNT_INFO_CHURN": (churn_at, 90),
    "CASH_OUT": (cash_out_at, 180),
    "SCORE_SWIPING": (swiping_at, 180),
    "FREQUENT_EARLY_REPAYMENT": (early_at, 90),
    "LOW_CREDIT_SCORE": (low_score_at, 90),
    "INACTIVITY": (inactivity_at, 90),
}


def closed_by(code: str, when: datetime = C) -> Timeline:
    """A timeline whose line closed at ``when`` for ``code`` only."""
    build, _ = CLOSERS[code]
    timeline = Timeline()
    events = sorted(build(when), key=lambda e: e.occurred_at)
    timeline.apply(*[e for e in events if e.occurred_at <= when])
    timeline.advance(when, final=True)
    timeline.apply(*[e for e in events if e.occurred_at > when])
    [decision] = closes(timeline.outputs)
    assert codes(decision) == [code]
    assert decision.decided_at == when
    return timeline


# --- closing ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", CLOSERS, ids=str)
def test_close_decision_names_its_reason_and_next_review(code: str) -> None:
    _, cooling = CLOSERS[code]
    timeline = closed_by(code)
    [decision] = closes(timeline.outputs)
    assert decision.line_state == "closed"
    assert decision.next_review_at == C + cooling * DAY
    assert decision.policy_version == timeline.engine.policy.version
    assert all(readable(reason.message) for reason in decision.reasons)
    assert [f.raised_at for f in flags(timeline.outputs, code)] == [C]
    expected_trigger = None if code == "INACTIVITY" else decision.trigger_event_id
    assert decision.trigger_event_id == expected_trigger


def test_first_close_lists_every_reason_true_at_that_moment_event() -> None:
    # The bind of card-3 is the fourth account change in 30 days AND completes a cash-out:
    # the outflow to card-3 happened at the same instant, and the card counts when bound
    # within the 7 days up to the outflow.
    events = [
        card(C - 3 * DAY, "card-1"),
        card(C - 2 * DAY, "card-1", "unbind"),
        profile(C - DAY, "phone"),
        drawdown(C - HOUR, "L1"),
        outflow(C, "800.00", "card-3"),
        card(C, "card-3"),
    ]
    timeline = run(events)
    [decision] = closes(timeline.outputs)
    assert sorted(codes(decision)) == ["ACCOUNT_INFO_CHURN", "CASH_OUT"]
    assert decision.trigger_event_id == events[-1].event_id
    # Any CASH_OUT reason makes the cooling period 180 days.
    assert decision.next_review_at == C + 180 * DAY


def test_first_close_lists_every_reason_true_at_that_moment_deadline() -> None:
    # First event at midnight, no drawdown: inactivity's 90 days end exactly when an
    # installment due 60 days later reaches overdue day 30.
    start = midnight(date(2026, 3, 2))
    due = date(2026, 5, 1)
    deadline = midnight(due + timedelta(days=30))
    assert deadline == start + 90 * DAY
    timeline = run([login(start), bill(start, "L1", 1, due)], until=deadline)
    [decision] = closes(timeline.outputs)
    assert sorted(codes(decision)) == ["INACTIVITY", "SERIOUS_OVERDUE"]
    assert decision.decided_at == deadline
    assert decision.trigger_event_id is None


def test_no_second_close_while_closed_but_flags_are_raised() -> None:
    timeline = closed_by("DEVICE_SWITCHING")
    later = [
        *churn_at(C + 10 * DAY),
        *cash_out_at(C + 20 * DAY),
        score(C + 30 * DAY, 500),
        *devices_at(C + 40 * DAY, "y"),
    ]
    produced = timeline.apply(*later)
    assert decisions(produced) == []
    assert sorted(f.signal for f in flags(produced)) == [
        "ACCOUNT_INFO_CHURN",
        "CASH_OUT",
        "DEVICE_SWITCHING",
        "LOW_CREDIT_SCORE",
    ]
    assert timeline.line_state() == "closed"


def test_inactivity_is_not_evaluated_while_closed() -> None:
    # Opened with a drawdown, closed the next day: 90 days after the drawdown the line is
    # closed, so INACTIVITY is neither a flag nor a negative signal.
    timeline = Timeline()
    timeline.apply(drawdown(at(0), "L1"), *devices_at(at(1)))
    timeline.apply(login(at(85)))
    timeline.advance(at(1) + 90 * DAY, final=True)
    assert flags(timeline.outputs, "INACTIVITY") == []
    assert [d.decided_at for d in restores(timeline.outputs)] == [at(1) + 90 * DAY]


# --- cooling and restore at the deadline ---------------------------------------------------


@pytest.mark.parametrize("code", CLOSERS, ids=str)
@pytest.mark.parametrize("offset", [-SECOND, 0 * SECOND], ids=["1s-before", "at"])
def test_restore_eligible_exactly_when_the_cooling_period_ends(
    code: str, offset: timedelta
) -> None:
    _, cooling = CLOSERS[code]
    review = C + cooling * DAY
    timeline = closed_by(code)
    timeline.apply(login(review - 10 * DAY))
    timeline.advance(review + offset, final=True)
    granted = restores(timeline.outputs)
    if offset < 0 * SECOND:
        assert granted == []
        assert timeline.line_state() == "closed"
        return
    [decision] = granted
    assert decision.decided_at == review
    assert decision.trigger_event_id is None
    assert decision.line_state == "restore_eligible"
    assert codes(decision) == [code]
    assert all(readable(reason.message) for reason in decision.reasons)
    assert decision.next_review_at is None
    assert timeline.line_state() == "restore_eligible"


def restart_by_flag(kind: str, when: datetime) -> list[Event]:
    if kind == "churn":
        return churn_at(when)
    if kind == "cash_out":
        return cash_out_at(when)
    if kind == "low_score":
        return [score(when, 550), score(when + HOUR, 650)]
    if kind == "devices":
        return devices_at(when, "y")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["churn", "cash_out", "low_score", "devices"])
def test_a_flag_while_closed_restarts_the_cooling_period(kind: str) -> None:
    timeline = closed_by("DEVICE_SWITCHING")
    timeline.apply(*restart_by_flag(kind, C + 50 * DAY))
    timeline.apply(login(C + 130 * DAY))
    # The cooling length stays that of the closure (90 days: no CASH_OUT closure reason).
    timeline.advance(C + 140 * DAY - SECOND, final=True)
    assert restores(timeline.outputs) == []
    timeline.advance(C + 140 * DAY, final=True)
    assert [d.decided_at for d in restores(timeline.outputs)] == [C + 140 * DAY]


def test_overdue_flags_while_closed_restart_the_cooling_period() -> None:
    due = date(2026, 6, 30)  # C is 2026-06-10 09:00
    timeline = closed_by("DEVICE_SWITCHING")
    timeline.apply(bill(C, "L1", 1, due))
    paid_at = midnight(due) + 3 * DAY + 12 * HOUR  # overdue day 3: after the day-1 flag
    timeline.apply(pay(paid_at, "L1", installment=1))
    assert [f.overdue_days for f in flags(timeline.outputs, "OVERDUE")] == [1]
    timeline.apply(login(paid_at + 80 * DAY))
    timeline.advance(paid_at + 90 * DAY - SECOND, final=True)
    assert restores(timeline.outputs) == []
    timeline.advance(paid_at + 90 * DAY, final=True)
    assert [d.decided_at for d in restores(timeline.outputs)] == [paid_at + 90 * DAY]


CLEARING_CASES = {
    # (payment moment relative to the due date's midnight, settles_loan, restore moment)
    "paid-on-the-due-date-is-not-a-negative-signal": (12 * HOUR, False, None),
    "cleared-on-overdue-day-10": (10 * DAY + 12 * HOUR, False, 10 * DAY + 12 * HOUR),
    "settled-on-overdue-day-10": (10 * DAY + 12 * HOUR, True, 10 * DAY + 12 * HOUR),
}


@pytest.mark.parametrize("paid,settles,anchor", CLEARING_CASES.values(), ids=CLEARING_CASES.keys())
def test_clearing_an_overdue_installment_restarts_the_cooling_period(
    paid: timedelta, settles: bool, anchor: timedelta | None
) -> None:
    due = date(2026, 6, 30)
    timeline = closed_by("DEVICE_SWITCHING")
    timeline.apply(bill(C, "L1", 1, due), pay(midnight(due) + paid, "L1", settles=settles))
    late = [f.raised_at for f in flags(timeline.outputs, "OVERDUE")]
    restart = max([C, *late]) if anchor is None else midnight(due) + anchor
    # Without the clearing, the cooling would restart at the last flag (overdue day 7).
    assert anchor is None or restart > max(late)
    timeline.apply(login(restart + 80 * DAY))
    timeline.advance(restart + 90 * DAY - SECOND, final=True)
    assert restores(timeline.outputs) == []
    timeline.advance(restart + 90 * DAY, final=True)
    assert [d.decided_at for d in restores(timeline.outputs)] == [restart + 90 * DAY]


# --- restore conditions unmet at the deadline: the first later event decides ----------------

REVIEW = C + 90 * DAY


@pytest.mark.parametrize(
    "last_login,restored_at",
    [
        (REVIEW - 30 * DAY, REVIEW),
        (REVIEW - 30 * DAY - SECOND, None),
        (REVIEW - 29 * DAY, REVIEW),
    ],
    ids=["login-exactly-30d-before", "login-30d-plus-1s-before", "login-29d-before"],
)
def test_restore_needs_a_login_in_the_last_30_days(
    last_login: datetime, restored_at: datetime | None
) -> None:
    timeline = closed_by("DEVICE_SWITCHING")
    timeline.apply(login(last_login))
    timeline.advance(REVIEW + 5 * DAY, final=True)
    assert [d.decided_at for d in restores(timeline.outputs)] == (
        [restored_at] if restored_at else []
    )


@pytest.mark.parametrize(
    "recent",
    [
        login(REVIEW - 10 * DAY, "phone-1", success=False),
        device_change(REVIEW - 10 * DAY, "phone-1"),
        outflow(REVIEW - 10 * DAY, "10.00", None, "purchase"),
    ],
    ids=["failed-login", "device-change", "purchase"],
)
def test_only_a_successful_login_counts_as_logging_in(recent: Event) -> None:
    timeline = closed_by("DEVICE_SWITCHING")
    timeline.apply(login(REVIEW - 31 * DAY), recent)
    timeline.advance(REVIEW + 5 * DAY, final=True)
    assert restores(timeline.outputs) == []


def test_a_later_login_decides_when_no_recent_login_at_the_deadline() -> None:
    timeline = closed_by("DEVICE_SWITCHING")
    timeline.advance(REVIEW, final=True)
    assert restores(timeline.outputs) == []
    # An event that leaves a condition unmet decides nothing.
    timeline.apply(outflow(REVIEW + DAY, "10.00", None, "purchase"))
    assert restores(timeline.outputs) == []
    trigger = login(REVIEW + 5 * DAY)
    timeline.apply(trigger)
    [decision] = restores(timeline.outputs)
    assert decision.decided_at == REVIEW + 5 * DAY
    assert decision.trigger_event_id == trigger.event_id
    assert decision.line_state == "restore_eligible"


@pytest.mark.parametrize(
    "new_score,restored", [(599, False), (600, True), (700, True)], ids=["599", "600", "700"]
)
def test_a_later_score_decides_when_the_score_is_low_at_the_deadline(
    new_score: int, restored: bool
) -> None:
    timeline = Timeline()
    timeline.apply(login(C - DAY), score(C, 550))
    timeline.apply(login(REVIEW - 10 * DAY))
    timeline.advance(REVIEW, final=True)
    assert restores(timeline.outputs) == []
    trigger = score(REVIEW + 5 * DAY, new_score)
    timeline.apply(trigger)
    granted = restores(timeline.outputs)
    if not restored:
        assert granted == []
        assert flags(timeline.outputs, "LOW_CREDIT_SCORE")[-1].raised_at == C
        return
    assert [(d.decided_at, d.trigger_event_id) for d in granted] == [
        (REVIEW + 5 * DAY, trigger.event_id)
    ]


def test_a_past_due_installment_blocks_restore_and_clearing_it_restarts_cooling() -> None:
    due = date(2026, 5, 11)
    serious = midnight(due + timedelta(days=30))  # 2026-06-10 00:00
    timeline = Timeline()
    timeline.apply(drawdown(at(60), "L1"), bill(at(61), "L1", 1, due))
    timeline.advance(serious, final=True)
    [closing] = closes(timeline.outputs)
    assert codes(closing) == ["SERIOUS_OVERDUE"]
    review = serious + 90 * DAY
    timeline.apply(login(review - 5 * DAY))
    timeline.advance(review, final=True)
    assert restores(timeline.outputs) == []
    paid_at = review + 2 * DAY
    timeline.apply(pay(paid_at, "L1", installment=1))
    # Clearing an overdue installment is a negative signal: no eligibility yet.
    assert restores(timeline.outputs) == []
    timeline.apply(login(paid_at + 85 * DAY))
    timeline.advance(paid_at + 90 * DAY - SECOND, final=True)
    assert restores(timeline.outputs) == []
    timeline.advance(paid_at + 90 * DAY, final=True)
    assert [d.decided_at for d in restores(timeline.outputs)] == [paid_at + 90 * DAY]


def test_never_an_eligibility_for_an_open_line() -> None:
    events = [e for month in range(12) for e in (drawdown(at(30 * month), f"L{month}"),)]
    events += [login(at(10 + 30 * month)) for month in range(12)]
    events.sort(key=lambda e: e.occurred_at)
    timeline = run(events, until=at(360))
    assert decisions(timeline.outputs) == []
    assert timeline.line_state() == "open"


# --- restore_eligible is treated as open -------------------------------------------------------


def restored(code: str = "DEVICE_SWITCHING") -> tuple[Timeline, datetime]:
    _, cooling = CLOSERS[code]
    timeline = closed_by(code)
    review = C + cooling * DAY
    timeline.apply(login(review - 10 * DAY))
    timeline.advance(review, final=True)
    assert len(restores(timeline.outputs)) == 1
    return timeline, review


def test_a_restore_eligible_line_closes_again_on_a_new_signal() -> None:
    timeline, eligible = restored()
    timeline.apply(*churn_at(eligible + 10 * DAY))
    first, second = closes(timeline.outputs)
    assert codes(second) == ["ACCOUNT_INFO_CHURN"]
    assert second.decided_at == eligible + 10 * DAY
    assert second.decision_id != first.decision_id
    assert timeline.line_state() == "closed"


def test_a_new_cycle_gets_its_own_restore_and_cooling() -> None:
    timeline, eligible = restored("DEVICE_SWITCHING")
    again = eligible + 10 * DAY
    timeline.apply(*cash_out_at(again))
    second = closes(timeline.outputs)[1]
    assert codes(second) == ["CASH_OUT"]
    assert second.next_review_at == again + 180 * DAY
    timeline.apply(login(again + 175 * DAY))
    timeline.advance(again + 180 * DAY, final=True)
    first_restore, second_restore = restores(timeline.outputs)
    assert second_restore.decided_at == again + 180 * DAY
    assert codes(second_restore) == ["CASH_OUT"]
    assert second_restore.decision_id != first_restore.decision_id


@pytest.mark.parametrize("offset", [-SECOND, 0 * SECOND], ids=["1s-before", "at"])
def test_inactivity_counts_from_the_eligibility(offset: timedelta) -> None:
    timeline, eligible = restored()
    timeline.advance(eligible + 90 * DAY + offset, final=True)
    closing = [d for d in closes(timeline.outputs) if "INACTIVITY" in codes(d)]
    expected = [] if offset else [eligible + 90 * DAY]
    assert [d.decided_at for d in closing] == expected


def test_a_drawdown_after_eligibility_restarts_inactivity() -> None:
    timeline, eligible = restored()
    timeline.apply(drawdown(eligible + 10 * DAY, "L9"))
    timeline.advance(eligible + 100 * DAY - SECOND, final=True)
    assert len(closes(timeline.outputs)) == 1
    timeline.advance(eligible + 100 * DAY, final=True)
    [_, second] = closes(timeline.outputs)
    assert codes(second) == ["INACTIVITY"]
    assert second.decided_at == eligible + 100 * DAY


def test_one_restore_per_closure() -> None:
    timeline, eligible = restored()
    for month in range(1, 3):
        timeline.apply(
            login(eligible + 20 * month * DAY), drawdown(eligible + 20 * month * DAY, f"M{month}")
        )
    timeline.advance(eligible + 60 * DAY, final=True)
    assert len(restores(timeline.outputs)) == 1
    assert timeline.line_state() == "restore_eligible"


def test_overdue_milestones_do_not_close_but_serious_overdue_closes_an_eligible_line() -> None:
    timeline, eligible = restored()
    due = (eligible + 5 * DAY).date()
    timeline.apply(bill(eligible + DAY, "L5", 1, due))
    timeline.advance(midnight(due) + 30 * DAY - SECOND, final=True)
    assert [f.overdue_days for f in flags(timeline.outputs, "OVERDUE")] == [1, 7, 15]
    assert len(closes(timeline.outputs)) == 1
    assert timeline.line_state() == "restore_eligible"
    timeline.advance(midnight(due) + 30 * DAY, final=True)
    second = closes(timeline.outputs)[1]
    assert codes(second) == ["SERIOUS_OVERDUE"]
    assert (second.decided_at, second.trigger_event_id) == (midnight(due) + 30 * DAY, None)
