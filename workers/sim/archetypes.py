"""Behaviour archetypes: one function per kind of user, each labelled with what it should trigger.

An archetype function stages one user's whole history on a :class:`Timeline` from the
user's first event at ``first_at`` and returns the :class:`Outcome` the default policy
should produce: the reason code of the line's first closure (or ``None``), whether the
line should later become restore-eligible, and when the risky behaviour began.
Risky users live an ordinary life until their behaviour starts and fall silent after it
(bills already running keep being paid automatically unless the archetype defaults).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from schemas.outputs import ReasonCode
from workers.sim.behaviour import Profile, draw_profile, everyday, regular_loans
from workers.sim.ordinary import choose_scenarios, ordinary
from workers.sim.timeline import (
    DAY,
    HOUR,
    MINUTE,
    Repaying,
    Timeline,
    add_months,
    at_day,
    date_start,
    loan,
    loan_principal,
    new_device,
    quick_cycle,
    to_date,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the default policy should do with this user by the end of the span."""

    expected_reason: ReasonCode | None
    behaviour_started_at: int | None = None
    expect_restore: bool = False
    traits: tuple[str, ...] = ()


Build = Callable[[Timeline, int], Outcome]


@dataclass(frozen=True, slots=True)
class Archetype:
    name: str
    reason: ReasonCode | None
    min_days: int
    """The shortest span (days) in which the behaviour and its decision both fit."""
    build: Build
    description: str


def _trigger_at(tl: Timeline, first_at: int, needs_days: int) -> int:
    """A moment for the risky behaviour to begin, leaving ``needs_days`` before the end."""
    earliest = first_at + DAY
    latest = tl.ends_at - (needs_days + 1) * DAY
    return at_day(earliest + tl.rng.randrange(max(0, latest - earliest) + 1), tl.rng)


def _ordinary_until(tl: Timeline, first_at: int, until: int) -> Profile:
    profile = draw_profile(tl, first_at)
    everyday(tl, profile, first_at, until, loans_until=until)
    return profile


def _past_due_from(due: date) -> int:
    """Overdue day 1 begins at 00:00 UTC the day after the due date."""
    return date_start(due) + DAY


def build_ordinary(tl: Timeline, first_at: int) -> Outcome:
    scenarios = choose_scenarios(tl.rng)
    ordinary(tl, first_at, scenarios)
    return Outcome(None, traits=tuple(scenarios))


def build_quota_brusher(tl: Timeline, first_at: int) -> Outcome:
    """3 to 5 loans each settled within two days of drawdown, all inside two weeks."""
    rng = tl.rng
    start = _trigger_at(tl, first_at, 20)
    _ordinary_until(tl, first_at, start)
    drawn_at = start
    for _ in range(rng.randint(3, 5)):
        quick_cycle(tl, drawn_at, rng.randint(2 * 60, 46 * 60) * MINUTE, loan_principal(rng))
        drawn_at = at_day(drawn_at + rng.randint(2, 4) * DAY, rng)
    return Outcome("SCORE_SWIPING", start)


def build_cash_out(tl: Timeline, first_at: int) -> Outcome:
    """Bind a new card, draw down, and move 82-100% of it to that card within hours."""
    rng = tl.rng
    bound_at = _trigger_at(tl, first_at, 10)
    _ordinary_until(tl, first_at, bound_at)
    card_id = tl.name("c")
    tl.card(bound_at, "bind", card_id)
    drawn_at = bound_at + rng.randint(1, 5 * 24) * HOUR
    principal = loan_principal(rng)
    defaults = rng.random() < 0.5
    repaying = Repaying(stop_at=drawn_at) if defaults else Repaying()
    loan(
        tl, drawn_at, principal, rng.choice((1, 3, 6)), rng.choice(("jiebei", "reserve")), repaying
    )
    remaining = principal * rng.randint(82, 100) // 100
    moment = drawn_at
    for parts_left in range(rng.randint(1, 3), 0, -1):
        part = remaining if parts_left == 1 else remaining * rng.randint(30, 60) // 100
        moment += rng.randint(5, 6 * 60) * MINUTE
        tl.move_money(moment, rng.choice(("transfer_out", "withdrawal")), part, card_id)
        remaining -= part
    return Outcome("CASH_OUT", drawn_at, traits=("defaults",) if defaults else ())


def build_device_switcher(tl: Timeline, first_at: int) -> Outcome:
    """An account takeover (4-6 devices in hours) or a device farm (6+ devices in a week)."""
    rng = tl.rng
    start = _trigger_at(tl, first_at, 8)
    profile = draw_profile(tl, first_at)
    profile.secondary_device = None
    everyday(tl, profile, first_at, start, loans_until=start)
    primary = profile.primary_at(start)
    tl.login(start - HOUR, primary)
    if rng.random() < 0.5:
        new_device(tl, start, primary)
        for _ in range(rng.randint(3, 5)):
            tl.login(start + rng.randint(15, 18 * 60) * MINUTE, tl.name("d"))
        return Outcome("DEVICE_SWITCHING", start, traits=("takeover",))
    for step in range(rng.randint(5, 7)):
        tl.login(start + step * 26 * HOUR + rng.randrange(HOUR), tl.name("d"))
    return Outcome("DEVICE_SWITCHING", start, traits=("farm",))


def build_overdue_jiebei(tl: Timeline, first_at: int) -> Outcome:
    """A jiebei loan whose bills are never paid: serious at 30 days past the first due date."""
    rng = tl.rng
    drawn_at = _trigger_at(tl, first_at, 65)
    _ordinary_until(tl, first_at, drawn_at)
    term = rng.choice((1, 3, 6))
    loan(tl, drawn_at, loan_principal(rng), term, "jiebei", Repaying(stop_at=drawn_at))
    return Outcome("SERIOUS_OVERDUE", _past_due_from(add_months(to_date(drawn_at), 1)))


def build_overdue_sibling(tl: Timeline, first_at: int) -> Outcome:
    """An unpaid huabei bill or reserve loan: overdue on a sibling product counts too."""
    rng = tl.rng
    start = _trigger_at(tl, first_at, 75)
    profile = _ordinary_until(tl, first_at, start)
    if rng.random() < 0.5:
        loan(tl, start, loan_principal(rng), 1, "reserve", Repaying(stop_at=start))
        return Outcome(
            "SERIOUS_OVERDUE", _past_due_from(add_months(to_date(start), 1)), traits=("reserve",)
        )
    # Borrow (repaid on time), shop on huabei, then never pay the huabei statement.
    loan(tl, start, loan_principal(rng), 1)
    total = 0
    for _ in range(rng.randint(2, 6)):
        cents = rng.randint(50, 3_000) * 100
        tl.purchase(start + rng.randrange(5 * DAY), cents, "huabei", f"m{rng.randrange(5000)}")
        total += cents
    month = to_date(start + 5 * DAY).replace(day=1)
    statement = add_months(month, 1)
    due = statement.replace(day=10)
    tl.bill(date_start(statement) + 5 * HOUR, f"{tl.user_id}-hbx", "huabei", 1, due, total)
    tl.login(date_start(due) + 3 * DAY, profile.primary_at(start))
    return Outcome("SERIOUS_OVERDUE", _past_due_from(due), traits=("huabei",))


def build_dormant(tl: Timeline, first_at: int) -> Outcome:
    """Logs in and shops now and then, but draws no loan for 90 days."""
    rng = tl.rng
    profile = draw_profile(tl, first_at)
    last_drawdown = first_at
    if tl.ends_at - first_at > 115 * DAY and rng.random() < 0.5:
        last_drawdown = at_day(first_at + rng.randint(1, 20) * DAY, rng)
        loan(tl, last_drawdown, loan_principal(rng), 1)
    leaves_at = last_drawdown + rng.randint(40, 85) * DAY
    everyday(tl, profile, first_at, leaves_at, loans_until=first_at)
    return Outcome("INACTIVITY", last_drawdown)


def build_early_repayer(tl: Timeline, first_at: int) -> Outcome:
    """4 to 6 loans each paid off 3 to 12 days after drawdown, long before they fall due."""
    rng = tl.rng
    start = _trigger_at(tl, first_at, 36)
    _ordinary_until(tl, first_at, start)
    drawn_at = start
    for _ in range(rng.randint(4, 6)):
        settle_at = drawn_at + rng.randint(3 * 24, 12 * 24) * HOUR
        term = rng.choice((3, 6, 12))
        loan(tl, drawn_at, loan_principal(rng), term, repaying=Repaying(settle_at=settle_at))
        drawn_at = at_day(drawn_at + rng.randint(1, 7) * DAY, rng)
    return Outcome("FREQUENT_EARLY_REPAYMENT", start)


def build_churner(tl: Timeline, first_at: int) -> Outcome:
    """4 to 7 card binds/unbinds and phone/identity changes within a month."""
    rng = tl.rng
    start = _trigger_at(tl, first_at, 30)
    _ordinary_until(tl, first_at, start)
    spread = rng.randint(2, 28) * DAY
    moments = sorted(start + rng.randrange(spread) for _ in range(rng.randint(3, 6)))
    for moment in [start, *moments]:
        kind = rng.choice(("bind", "unbind", "bind", "phone", "identity"))
        if kind in ("bind", "unbind"):
            tl.card(moment, kind, tl.name("c"))
        else:
            tl.profile(moment, kind)
    return Outcome("ACCOUNT_INFO_CHURN", start)


def build_low_score(tl: Timeline, first_at: int) -> Outcome:
    """A credit-score refresh below 600."""
    rng = tl.rng
    at = _trigger_at(tl, first_at, 3)
    _ordinary_until(tl, first_at, at)
    tl.score(at, rng.choice((599, rng.randint(400, 598))))
    return Outcome("LOW_CREDIT_SCORE", at)


def build_restored(tl: Timeline, first_at: int) -> Outcome:
    """Closed (score under 600, or a bill 30 days overdue), then clean long enough to restore.

    Cooling is 90 days from the closure or the later clearing of the overdue bill; the
    user keeps logging in every week, pays every other bill on time and draws no loan
    while closed, then borrows again once eligible.
    """
    rng = tl.rng
    via_overdue = tl.ends_at - first_at > 175 * DAY and rng.random() < 0.5
    start = _trigger_at(tl, first_at, 170 if via_overdue else 105)
    profile = draw_profile(tl, first_at)
    everyday(tl, profile, first_at, tl.ends_at, loans_until=start)
    if via_overdue:
        due = add_months(to_date(start), 1)
        cleared_after = rng.randint(31, 40)
        loan(tl, start, loan_principal(rng), 1, repaying=Repaying({1: cleared_after}))
        behaviour_at = _past_due_from(due)
        eligible_at = date_start(due) + (cleared_after + 1) * DAY + 90 * DAY
    else:
        tl.score(start, rng.randint(520, 599))
        behaviour_at = start
        eligible_at = start + 90 * DAY
    moment = start
    while moment < tl.ends_at:  # weekly logins keep the restore condition met
        moment = at_day(moment + rng.randint(4, 7) * DAY, rng)
        tl.login(moment, profile.primary_at(moment))
    regular_loans(tl, eligible_at + DAY, tl.ends_at)
    reason: ReasonCode = "SERIOUS_OVERDUE" if via_overdue else "LOW_CREDIT_SCORE"
    trait = "via_overdue" if via_overdue else "via_low_score"
    return Outcome(reason, behaviour_at, expect_restore=eligible_at < tl.ends_at, traits=(trait,))


_LEAD_DAYS = 4
"""Before a behaviour: the first event (up to 2 days in), a day of ordinary life, a day of
rounding to the daily cycle."""

_REGISTRY: tuple[tuple[str, ReasonCode | None, int, Build, str], ...] = (
    # name, reason, days the behaviour and its decision need, build, description
    ("ordinary", None, -1, build_ordinary, "repays on time; noise and near misses"),
    ("quota_brusher", "SCORE_SWIPING", 20, build_quota_brusher,
     "draws and settles loans within two days, again and again"),
    ("cash_out", "CASH_OUT", 10, build_cash_out, "moves a drawdown to a freshly bound card"),
    ("device_switcher", "DEVICE_SWITCHING", 8, build_device_switcher,
     "account takeover or device farm"),
    ("overdue_jiebei", "SERIOUS_OVERDUE", 65, build_overdue_jiebei, "stops paying a jiebei loan"),
    ("overdue_sibling", "SERIOUS_OVERDUE", 75, build_overdue_sibling,
     "stops paying a huabei statement or a reserve loan"),
    ("dormant", "INACTIVITY", 92, build_dormant, "no drawdown for 90 days"),
    ("early_repayer", "FREQUENT_EARLY_REPAYMENT", 36, build_early_repayer,
     "pays loans off early, four or more times in 90 days"),
    ("churner", "ACCOUNT_INFO_CHURN", 30, build_churner,
     "changes cards, phone or identity four or more times in 30 days"),
    ("low_score", "LOW_CREDIT_SCORE", 3, build_low_score, "credit score refreshed below 600"),
    ("restored", None, 105, build_restored,
     "closed (score or overdue), then well behaved until restore-eligible"),
)  # fmt: skip

ARCHETYPES: dict[str, Archetype] = {
    name: Archetype(name, reason, needs + _LEAD_DAYS, build, description)
    for name, reason, needs, build, description in _REGISTRY
}
"""Every archetype by name; ``restored`` users carry the reason of their closure."""
