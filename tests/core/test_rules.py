"""Each rule of the default policy at, just below and just above its thresholds.

Scenarios are written from the policy table and its "Precise semantics": windows include both
ends, overdue day N begins at 00:00 UTC of due_date + N days, a flag is raised when its
condition becomes true and closes an open line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    device_change,
    drawdown,
    flags,
    login,
    midnight,
    outflow,
    pay,
    profile,
    run,
    score,
)


@dataclass(frozen=True)
class Case:
    """Events (in order), an optional final clock, and when the signal is expected."""

    events: list[Event]
    expected_at: datetime | None
    until: datetime | None = None
    extra: dict[str, object] = field(default_factory=dict)


def assert_signal(timeline: Timeline, signal: str, expected_at: datetime | None) -> None:
    """One flag of ``signal`` and one close listing it, both at ``expected_at`` (or none)."""
    raised = [f.raised_at for f in flags(timeline.outputs, signal)]
    closing = [d for d in closes(timeline.outputs) if signal in codes(d)]
    if expected_at is None:
        assert raised == []
        assert closing == []
        return
    assert raised == [expected_at]
    assert [d.decided_at for d in closing] == [expected_at]
    assert timeline.line_state() == "closed"


def check(case: Case, signal: str) -> Timeline:
    timeline = run(case.events, case.until)
    assert_signal(timeline, signal, case.expected_at)
    if case.expected_at is not None and case.until is None:
        # Caused by an event: the trigger is the event at that moment.
        closing = closes(timeline.outputs)[0]
        trigger = [e for e in case.events if e.event_id == closing.trigger_event_id]
        assert [e.occurred_at for e in trigger] == [case.expected_at]
    return timeline


# --- DEVICE_SWITCHING: 4 distinct devices within 24 h, or 6 within 7 days ----------------


def logins(*spec: tuple[timedelta, str]) -> list[Event]:
    return [login(at() + offset, device) for offset, device in spec]


DEVICE_CASES = {
    "24h-4-devices-exactly-24h-apart": Case(
        logins((0 * HOUR, "a"), (HOUR, "b"), (2 * HOUR, "c"), (DAY, "d")), at(1)
    ),
    "24h-4-devices-24h-plus-1s-apart": Case(
        logins((0 * HOUR, "a"), (HOUR, "b"), (2 * HOUR, "c"), (DAY + SECOND, "d")), None
    ),
    "24h-3-devices": Case(logins((0 * HOUR, "a"), (HOUR, "b"), (2 * HOUR, "c")), None),
    "24h-4-logins-3-distinct": Case(
        logins((0 * HOUR, "a"), (HOUR, "b"), (2 * HOUR, "c"), (3 * HOUR, "a")), None
    ),
    "24h-failed-login-not-counted": Case(
        [*logins((0 * HOUR, "a"), (HOUR, "b"), (2 * HOUR, "c")), login(at(hours=3), "d", False)],
        None,
    ),
    "24h-device-change-counts": Case(
        [*logins((0 * HOUR, "a"), (HOUR, "b"), (2 * HOUR, "c")), device_change(at(hours=3), "d")],
        at(hours=3),
    ),
    "24h-previous-device-not-counted": Case(
        [
            *logins((0 * HOUR, "a"), (HOUR, "b"), (2 * HOUR, "c")),
            device_change(at(hours=3), "c", previous="z"),
        ],
        None,
    ),
    "7d-6-devices-exactly-7d-apart": Case(
        logins(*((i * 33.6 * HOUR, f"d{i}") for i in range(6))), at(7)
    ),
    "7d-6-devices-7d-plus-1s-apart": Case(
        logins(
            *((i * 33.6 * HOUR + (SECOND if i == 5 else 0 * SECOND), f"d{i}") for i in range(6))
        ),
        None,
    ),
    "7d-5-devices": Case(logins(*((i * 33.6 * HOUR, f"d{i}") for i in range(5))), None),
}


@pytest.mark.parametrize("case", DEVICE_CASES.values(), ids=DEVICE_CASES.keys())
def test_device_switching(case: Case) -> None:
    check(case, "DEVICE_SWITCHING")


def test_device_switching_evidence_counts_the_devices() -> None:
    timeline = check(DEVICE_CASES["24h-4-devices-exactly-24h-apart"], "DEVICE_SWITCHING")
    evidence = flags(timeline.outputs, "DEVICE_SWITCHING")[0].evidence
    assert evidence["distinct_devices"] == 4
    assert evidence["threshold"] == 4


# --- ACCOUNT_INFO_CHURN: card binds/unbinds + phone/identity changes, 4 within 30 days -------


def churn(*spec: tuple[float, str]) -> list[Event]:
    events: list[Event] = []
    for days, what in spec:
        when = at(days)
        if what in ("bind", "unbind"):
            events.append(card(when, "card-1", what))
        elif what == "credit_score":
            events.append(score(when, 700))
        else:
            events.append(profile(when, what))
    return events


CHURN_CASES = {
    "4-changes-exactly-30d-apart": Case(
        churn((0, "bind"), (10, "phone"), (20, "identity"), (30, "unbind")), at(30)
    ),
    "4-changes-30d-plus-1s-apart": Case(
        churn((0, "bind"), (10, "phone"), (20, "identity"), (30 + 1 / 86400, "unbind")), None
    ),
    "3-changes": Case(churn((0, "bind"), (1, "phone"), (2, "unbind")), None),
    "4-card-changes-in-an-hour": Case(
        churn((0, "bind"), (0.01, "unbind"), (0.02, "bind"), (0.03, "unbind")), at(0.03)
    ),
    "occupation-not-counted": Case(
        churn((0, "bind"), (1, "phone"), (2, "unbind"), (3, "occupation")), None
    ),
    "address-not-counted": Case(
        churn((0, "bind"), (1, "phone"), (2, "unbind"), (3, "address")), None
    ),
    "credit-score-not-counted": Case(
        churn((0, "bind"), (1, "phone"), (2, "unbind"), (3, "credit_score")), None
    ),
}


@pytest.mark.parametrize("case", CHURN_CASES.values(), ids=CHURN_CASES.keys())
def test_account_info_churn(case: Case) -> None:
    check(case, "ACCOUNT_INFO_CHURN")


# --- LOW_CREDIT_SCORE: latest credit_score below 600 ---------------------------------------

SCORE_CASES = {
    "599-closes": Case([score(at(1), 599)], at(1)),
    "600-stays-open": Case([score(at(1), 600)], None),
    "350-closes": Case([score(at(1), 350)], at(1)),
    "950-stays-open": Case([score(at(1), 950)], None),
    "650-then-599": Case([score(at(1), 650), score(at(2), 599)], at(2)),
    # In time order the score was under 600 from day 1 to day 2: delivery order is no excuse.
    "older-599-arriving-after-latest-650": Case([score(at(2), 650), score(at(1), 599)], at(1)),
}


@pytest.mark.parametrize("case", SCORE_CASES.values(), ids=SCORE_CASES.keys())
def test_low_credit_score(case: Case) -> None:
    check(case, "LOW_CREDIT_SCORE")


def test_low_credit_score_flag_not_repeated_while_it_stays_true() -> None:
    timeline = run([score(at(1), 550), score(at(2), 560), score(at(3), 599)])
    assert [f.raised_at for f in flags(timeline.outputs, "LOW_CREDIT_SCORE")] == [at(1)]


# --- INACTIVITY: no loan_drawdown for 90 days since the later of first event and last drawdown


INACTIVITY_CASES = {
    "first-event-plus-90d": Case([login(at(0))], at(90), until=at(90)),
    "first-event-plus-90d-minus-1s": Case([login(at(0))], None, until=at(90) - SECOND),
    "drawdown-restarts-the-90d": Case(
        [login(at(0)), drawdown(at(30), "L1")], at(120), until=at(120)
    ),
    "drawdown-plus-90d-minus-1s": Case(
        [login(at(0)), drawdown(at(30), "L1")], None, until=at(120) - SECOND
    ),
    "drawdown-1s-before-the-deadline": Case(
        [login(at(0)), drawdown(at(90) - SECOND, "L1")], None, until=at(90)
    ),
    "drawdown-exactly-at-the-deadline-comes-after-it": Case(
        [login(at(0)), drawdown(at(90), "L1")], at(90), until=at(90)
    ),
    "first-event-a-drawdown": Case([drawdown(at(0), "L1")], at(90), until=at(90)),
    "other-activity-does-not-count": Case(
        [login(at(0)), login(at(30)), outflow(at(60), "10.00", None, "purchase"), login(at(89))],
        at(90),
        until=at(100),
    ),
}


@pytest.mark.parametrize("case", INACTIVITY_CASES.values(), ids=INACTIVITY_CASES.keys())
def test_inactivity(case: Case) -> None:
    timeline = check(case, "INACTIVITY")
    for decision in closes(timeline.outputs):
        assert decision.trigger_event_id is None
        assert codes(decision) == ["INACTIVITY"]
        assert decision.next_review_at == decision.decided_at + 90 * DAY


# --- SERIOUS_OVERDUE and OVERDUE milestones ------------------------------------------------

DUE = date(2026, 3, 10)


def overdue_day(n: int, due: date = DUE) -> datetime:
    """00:00 UTC of due_date + n days: when overdue day n begins."""
    return midnight(due + timedelta(days=n))


@pytest.mark.parametrize("index,milestone", list(enumerate((1, 7, 15, 30))), ids=str)
@pytest.mark.parametrize("offset", [-SECOND, 0 * SECOND], ids=["1s-before", "at"])
def test_overdue_flags_at_midnight_of_each_milestone(
    index: int, milestone: int, offset: timedelta
) -> None:
    timeline = run([bill(at(0), "L1", 1, DUE)], until=overdue_day(milestone) + offset)
    raised = flags(timeline.outputs, "OVERDUE")
    expected = [1, 7, 15, 30][: index + (offset == 0 * SECOND)]
    assert [f.overdue_days for f in raised] == expected
    assert [f.raised_at for f in raised] == [overdue_day(n) for n in expected]
    assert all(f.trigger_event_id is None for f in raised)


@pytest.mark.parametrize("product", ["jiebei", "huabei", "reserve"])
def test_serious_overdue_closes_at_overdue_day_30(product: str) -> None:
    case = Case([bill(at(0), "L1", 1, DUE, product=product)], overdue_day(30), overdue_day(30))
    timeline = check(case, "SERIOUS_OVERDUE")
    decision = closes(timeline.outputs)[0]
    assert decision.trigger_event_id is None
    assert decision.next_review_at == overdue_day(30) + 90 * DAY
    assert [f.overdue_days for f in flags(timeline.outputs, "OVERDUE")] == [1, 7, 15, 30]


def test_serious_overdue_not_before_overdue_day_30() -> None:
    case = Case([bill(at(0), "L1", 1, DUE)], None, overdue_day(30) - SECOND)
    check(case, "SERIOUS_OVERDUE")


PAYMENT_CASES = {
    "paid-on-the-due-date": Case(
        [bill(at(0), "L1", 1, DUE), pay(midnight(DUE) + 23 * HOUR, "L1", installment=1)], None
    ),
    "paid-1s-before-overdue-day-30": Case(
        [bill(at(0), "L1", 1, DUE), pay(overdue_day(30) - SECOND, "L1", installment=1)], None
    ),
    "paid-at-overdue-day-30-too-late": Case(
        [bill(at(0), "L1", 1, DUE), pay(overdue_day(30), "L1", installment=1)], overdue_day(30)
    ),
    "partially-paid": Case(
        [bill(at(0), "L1", 1, DUE), pay(at(1), "L1", "99.99", installment=1)], overdue_day(30)
    ),
    "two-partial-payments-reach-the-bill": Case(
        [
            bill(at(0), "L1", 1, DUE),
            pay(at(1), "L1", "60.00", installment=1),
            pay(at(2), "L1", "40.00", installment=1),
        ],
        None,
    ),
    "unattributed-payment-pays-oldest-first": Case(
        [
            bill(at(0), "L1", 1, DUE),
            bill(at(0), "L1", 2, DUE + timedelta(days=31)),
            pay(at(1), "L1", "100.00"),
        ],
        None,
        extra={"overdue_installments": {2}},
    ),
    "unattributed-payment-leaves-the-oldest-unpaid-when-short": Case(
        [
            bill(at(0), "L1", 1, DUE),
            bill(at(0), "L1", 2, DUE + timedelta(days=31)),
            pay(at(1), "L1", "50.00"),
        ],
        overdue_day(30),
        extra={"overdue_installments": {1, 2}},
    ),
    "settles-loan-pays-every-installment": Case(
        [
            bill(at(0), "L1", 1, DUE),
            bill(at(0), "L1", 2, DUE + timedelta(days=31)),
            pay(at(1), "L1", "10.00", settles=True),
        ],
        None,
        extra={"overdue_installments": set()},
    ),
    "other-loan-payment-does-not-count": Case(
        [bill(at(0), "L1", 1, DUE), pay(at(1), "L2", installment=1)], overdue_day(30)
    ),
}


@pytest.mark.parametrize("case", PAYMENT_CASES.values(), ids=PAYMENT_CASES.keys())
def test_installment_payment(case: Case) -> None:
    # Installment 2 (due a month later) is 28 days late at the end: flagged, not serious.
    timeline = check(Case(case.events, case.expected_at, until=overdue_day(59)), "SERIOUS_OVERDUE")
    if "overdue_installments" in case.extra:
        late = {f.evidence["installment"] for f in flags(timeline.outputs, "OVERDUE")}
        assert late == case.extra["overdue_installments"]


def test_repayment_attributed_to_a_later_installment_pays_that_installment() -> None:
    # Installment 2 is paid in advance, before its bill; installment 1 stays unpaid.
    events = [
        bill(at(0), "L1", 1, DUE),
        pay(at(1), "L1", "100.00", installment=2),
        bill(at(2), "L1", 2, DUE + timedelta(days=31)),
    ]
    timeline = run(events, until=overdue_day(61))
    late = {f.evidence["installment"] for f in flags(timeline.outputs, "OVERDUE")}
    assert late == {1}


def test_overdue_flags_are_per_installment_and_serious_overdue_is_raised_once() -> None:
    second_due = DUE + timedelta(days=31)
    events = [bill(at(0), "L1", 1, DUE), bill(at(0), "L1", 2, second_due)]
    timeline = run(events, until=overdue_day(30, second_due))
    raised = flags(timeline.outputs, "OVERDUE")
    assert sorted((f.evidence["installment"], f.overdue_days) for f in raised) == [
        (i, n) for i in (1, 2) for n in (1, 7, 15, 30)
    ]
    # SERIOUS_OVERDUE became true once and stayed true: one flag, one close.
    assert [f.raised_at for f in flags(timeline.outputs, "SERIOUS_OVERDUE")] == [overdue_day(30)]
    assert len(closes(timeline.outputs)) == 1


# --- CASH_OUT: outflows to freshly bound cards, >= 80% of the drawdown within 24 h ------------

D = at(10)
"""The drawdown of every cash-out case."""


def cash_out(
    *outflows: tuple[timedelta, str],
    bound: timedelta = -DAY,
    kind: str = "transfer_out",
    drawn: str = "1000.00",
    product: str | None = None,
    to_card: str = "card-1",
) -> list[Event]:
    """A bind of card-1 at D + bound, a drawdown at D, then outflows at D + offset."""
    events = [card(D + bound, "card-1"), drawdown(D, "L1", drawn, product=product)]
    events += [outflow(D + offset, amount, to_card, kind) for offset, amount in outflows]
    return sorted(events, key=lambda e: e.occurred_at)


CASH_OUT_CASES = {
    "exactly-80-percent": Case(cash_out((HOUR, "800.00")), D + HOUR),
    "79.99-percent": Case(cash_out((HOUR, "799.90")), None),
    "two-outflows-add-up": Case(cash_out((HOUR, "500.00"), (2 * HOUR, "300.00")), D + 2 * HOUR),
    "withdrawal-counts": Case(cash_out((HOUR, "800.00"), kind="withdrawal"), D + HOUR),
    "reserve-drawdown": Case(cash_out((HOUR, "800.00"), product="reserve"), D + HOUR),
    "odd-amount-exactly-80-percent": Case(cash_out((HOUR, "987.60"), drawn="1234.50"), D + HOUR),
    "odd-amount-1-fen-short": Case(cash_out((HOUR, "987.59"), drawn="1234.50"), None),
    "outflow-at-the-drawdown-instant": Case(cash_out((0 * HOUR, "800.00")), D),
    "outflow-exactly-24h-after-drawdown": Case(cash_out((DAY, "800.00")), D + DAY),
    "outflow-24h-plus-1s-after-drawdown": Case(cash_out((DAY + SECOND, "800.00")), None),
    "part-outside-the-24h": Case(cash_out((HOUR, "400.00"), (DAY + SECOND, "400.00")), None),
    "card-bound-exactly-7d-before-outflow": Case(
        cash_out((HOUR, "800.00"), bound=HOUR - 7 * DAY), D + HOUR
    ),
    "card-bound-7d-plus-1s-before-outflow": Case(
        cash_out((HOUR, "800.00"), bound=HOUR - 7 * DAY - SECOND), None
    ),
    "card-bound-at-the-outflow-instant": Case(cash_out((HOUR, "800.00"), bound=HOUR), D + HOUR),
    "card-bound-after-the-outflow": Case(cash_out((HOUR, "800.00"), bound=HOUR + SECOND), None),
    "card-bound-after-drawdown-before-outflow": Case(
        cash_out((2 * HOUR, "800.00"), bound=HOUR), D + 2 * HOUR
    ),
    "outflow-to-another-card": Case(cash_out((HOUR, "800.00"), to_card="card-2"), None),
    "outflow-before-drawdown": Case(cash_out((-SECOND, "800.00")), None),
    "purchase-not-counted": Case(cash_out((HOUR, "800.00"), kind="purchase"), None),
}


@pytest.mark.parametrize("case", CASH_OUT_CASES.values(), ids=CASH_OUT_CASES.keys())
def test_cash_out(case: Case) -> None:
    check(case, "CASH_OUT")


def test_cash_out_judges_each_drawdown_on_its_own() -> None:
    # 900 is 90% of each 1000 drawdown (45% of both together): each drawdown is cashed out.
    events = [
        card(D - DAY, "card-1"),
        drawdown(D, "L1"),
        drawdown(D + HOUR, "L2"),
        outflow(D + 2 * HOUR, "900.00", "card-1"),
    ]
    timeline = run(events)
    raised = flags(timeline.outputs, "CASH_OUT")
    assert sorted(f.evidence["loan_id"] for f in raised) == ["L1", "L2"]
    assert [d.decided_at for d in closes(timeline.outputs)] == [D + 2 * HOUR]


# --- SCORE_SWIPING: 3 quick cycles (settled within 48 h of drawdown) within 30 days ---------


def cycles(*spec: tuple[float, timedelta], term: int = 3) -> list[Event]:
    """Loans settled at T0 + days, each ``held`` after its drawdown; in time order."""
    events: list[Event] = []
    for number, (days, held) in enumerate(spec, start=1):
        events += cycle(at(days) - held, f"L{number}", held, term)
    return sorted(events, key=lambda e: e.occurred_at)


SWIPING_CASES = {
    "3-quick-cycles-exactly-30d-apart": Case(cycles((0, HOUR), (15, HOUR), (30, HOUR)), at(30)),
    "3-quick-cycles-30d-plus-1s-apart": Case(
        cycles((0, HOUR), (15, HOUR), (30 + 1 / 86400, HOUR)), None
    ),
    "2-quick-cycles": Case(cycles((0, HOUR), (15, HOUR)), None),
    "settled-at-the-drawdown-instant-is-quick": Case(
        cycles((0, HOUR), (15, HOUR), (30, 0 * HOUR)), at(30)
    ),
    "settled-exactly-48h-after-drawdown-is-quick": Case(
        cycles((0, HOUR), (15, HOUR), (30, 48 * HOUR)), at(30)
    ),
    "settled-48h-plus-1s-after-drawdown-is-not-quick": Case(
        cycles((0, HOUR), (15, HOUR), (30, 48 * HOUR + SECOND)), None
    ),
}


@pytest.mark.parametrize("case", SWIPING_CASES.values(), ids=SWIPING_CASES.keys())
def test_score_swiping(case: Case) -> None:
    check(case, "SCORE_SWIPING")


# --- FREQUENT_EARLY_REPAYMENT: 4 settlements > 48 h after drawdown, before final due, in 90 d --

EARLY = 3 * DAY


def final_due_case(offset: timedelta) -> list[Event]:
    """Three early settlements, then a 1-month loan drawn 2026-04-16 09:00 and settled at its
    final due date (2026-05-16 09:00, one calendar month later) + offset."""
    drawn = datetime(2026, 4, 16, 9, 0, tzinfo=at().tzinfo)
    final_due = datetime(2026, 5, 16, 9, 0, tzinfo=at().tzinfo)
    events = cycles((0, EARLY), (25, EARLY), (50, EARLY))
    events += [drawdown(drawn, "L4", term=1), pay(final_due + offset, "L4", settles=True)]
    return sorted(events, key=lambda e: e.occurred_at)


EARLY_CASES = {
    "4-early-settlements-exactly-90d-apart": Case(
        cycles((0, EARLY), (30, EARLY), (60, EARLY), (90, EARLY)), at(90)
    ),
    "4-early-settlements-90d-plus-1s-apart": Case(
        cycles((0, EARLY), (30, EARLY), (60, EARLY), (90 + 1 / 86400, EARLY)), None
    ),
    "3-early-settlements": Case(cycles((0, EARLY), (30, EARLY), (60, EARLY)), None),
    "settled-exactly-48h-after-drawdown-is-not-early": Case(
        cycles((0, EARLY), (30, EARLY), (60, EARLY), (90, 48 * HOUR)), None
    ),
    "settled-48h-plus-1s-after-drawdown-is-early": Case(
        cycles((0, EARLY), (30, EARLY), (60, EARLY), (90, 48 * HOUR + SECOND)), at(90)
    ),
    "settled-1s-before-the-final-due-date-is-early": Case(
        final_due_case(-SECOND), datetime(2026, 5, 16, 8, 59, 59, tzinfo=at().tzinfo)
    ),
    "settled-at-the-final-due-date-is-not-early": Case(final_due_case(0 * SECOND), None),
}


@pytest.mark.parametrize("case", EARLY_CASES.values(), ids=EARLY_CASES.keys())
def test_frequent_early_repayment(case: Case) -> None:
    check(case, "FREQUENT_EARLY_REPAYMENT")


# --- a flag is raised when its condition becomes true, not again while it stays true --------


def quick(days: float, loan: str) -> list[Event]:
    return cycle(at(days) - HOUR, loan, HOUR)


def early(days: float, loan: str) -> list[Event]:
    return cycle(at(days) - 3 * DAY, loan, 3 * DAY)


EPISODES: dict[str, tuple[str, list[Event], list[datetime]]] = {
    # signal, events in time order, expected raised_at of each flag
    "devices": (
        "DEVICE_SWITCHING",
        [
            *logins(*((i * HOUR, f"a{i}") for i in range(5))),  # 5th while still true
            *logins(*((10 * DAY + i * HOUR, f"b{i}") for i in range(4))),  # true again
        ],
        [at(hours=3), at(10, hours=3)],
    ),
    "churn": (
        "ACCOUNT_INFO_CHURN",
        [
            *churn((0, "bind"), (1, "phone"), (2, "identity"), (3, "unbind"), (4, "bind")),
            *churn((40, "unbind"), (41, "phone"), (42, "identity"), (43, "bind")),
        ],
        [at(3), at(43)],
    ),
    "swiping": (
        "SCORE_SWIPING",
        [
            *quick(1, "L1"),
            *quick(2, "L2"),
            *quick(3, "L3"),
            *quick(4, "L4"),
            *quick(40, "L5"),
            *quick(41, "L6"),
            *quick(42, "L7"),
        ],
        [at(3), at(42)],
    ),
    "early": (
        "FREQUENT_EARLY_REPAYMENT",
        sorted(
            [
                *(e for i in range(5) for e in early(1 + i, f"L{i}")),
                *(e for i in range(4) for e in early(100 + i, f"M{i}")),
            ],
            key=lambda e: e.occurred_at,
        ),
        [at(4), at(103)],
    ),
    "score": (
        "LOW_CREDIT_SCORE",
        [score(at(1), 550), score(at(2), 560), score(at(3), 650), score(at(4), 590)],
        [at(1), at(4)],
    ),
    "cash-out-per-drawdown": (
        "CASH_OUT",
        [
            card(D - DAY, "card-1"),
            drawdown(D, "L1"),
            outflow(D + HOUR, "800.00", "card-1"),
            outflow(D + 2 * HOUR, "100.00", "card-1"),  # same drawdown: still true
            drawdown(D + 3 * DAY, "L2", "500.00"),
            outflow(D + 3 * DAY + HOUR, "400.00", "card-1"),  # a new drawdown cashed out
        ],
        [D + HOUR, D + 3 * DAY + HOUR],
    ),
}


@pytest.mark.parametrize("signal,events,expected", EPISODES.values(), ids=EPISODES.keys())
def test_flag_raised_when_condition_becomes_true_not_again_while_true(
    signal: str, events: list[Event], expected: list[datetime]
) -> None:
    timeline = run(events)
    assert [f.raised_at for f in flags(timeline.outputs, signal)] == expected
    # The first flag closes the line; later flags only restart its cooling period.
    assert [d.decided_at for d in closes(timeline.outputs)] == expected[:1]


# --- repayments attributed to an installment, whatever the arrival order ----------------------

ATTRIBUTED = [
    bill(at(0), "L7", 1, DUE, eid="bill-1"),
    bill(at(0, hours=1), "L7", 2, DUE + timedelta(days=31), eid="bill-2"),
    pay(at(1), "L7", "100.00", installment=2, eid="pay-2"),
]
ARRIVALS = {
    "in-time-order": [0, 1, 2],
    "payment-before-bill-2": [0, 2, 1],
    "payment-first": [2, 0, 1],
    "bill-2-first": [1, 0, 2],
}


@pytest.mark.parametrize("order", ARRIVALS.values(), ids=ARRIVALS.keys())
def test_repayment_for_installment_2_pays_installment_2(order: list[int]) -> None:
    timeline = run([ATTRIBUTED[i] for i in order], until=overdue_day(20))
    late = {f.evidence["installment"] for f in flags(timeline.outputs, "OVERDUE")}
    assert late == {1}
