"""Ordinary borrowers: everyday activity plus realistic noise and near misses of every rule.

A near miss stays just under one threshold of the default policy (3 of 4 changes, 79% of
a drawdown, 29 days overdue, a score of exactly 600, ...) so that a quality report can
tell a sharp rule from a trigger-happy one. Each user draws at most one scenario per
*family*; scenarios of different families never feed the same rule, so they may overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random

from workers.sim.behaviour import Profile, draw_profile, everyday
from workers.sim.timeline import (
    DAY,
    HOUR,
    MINUTE,
    Repaying,
    Timeline,
    at_day,
    loan,
    loan_principal,
    new_device,
    quick_cycle,
)

Scenario = Callable[[Timeline, Profile, int], None]
"""Stage one scenario starting at the given moment."""


def _late_short(tl: Timeline, profile: Profile, at: int) -> None:
    loan(tl, at, loan_principal(tl.rng), 1, repaying=Repaying({1: tl.rng.randint(1, 6)}))


def _late_29(tl: Timeline, profile: Profile, at: int) -> None:
    """Paid on overdue day 29: OVERDUE flags at 1, 7 and 15 days, never serious."""
    loan(tl, at, loan_principal(tl.rng), 1, repaying=Repaying({1: 29}))


def _outflow(tl: Timeline, at: int, cents: int, card_id: str) -> None:
    """A big outflow to a card; no other drawdown may fall in the 24 h before it."""
    tl.move_money(at, tl.rng.choice(("transfer_out", "withdrawal")), cents, card_id)
    tl.blackouts.append((at - 26 * HOUR, at + HOUR))


def _cash_ratio(tl: Timeline, profile: Profile, at: int) -> None:
    """A fresh card takes 79% (or less) of a drawdown within hours: under the 80% bar."""
    rng = tl.rng
    card_id = tl.name("c")
    tl.card(at, "bind", card_id)
    drawn_at = at + rng.randint(1, 72) * HOUR
    principal = loan_principal(rng)
    loan(tl, drawn_at, principal, rng.choice((1, 3)))
    share = rng.choice((79, 79, 75, 60))
    _outflow(tl, drawn_at + rng.randint(1, 20) * HOUR, principal * share // 100, card_id)


def _cash_late(tl: Timeline, profile: Profile, at: int) -> None:
    """All of a drawdown goes to a fresh card, but 26 hours or more after it."""
    rng = tl.rng
    card_id = tl.name("c")
    tl.card(at, "bind", card_id)
    drawn_at = at + rng.randint(1, 48) * HOUR
    principal = loan_principal(rng)
    loan(tl, drawn_at, principal, rng.choice((1, 3)))
    _outflow(tl, drawn_at + 26 * HOUR + rng.randrange(10 * HOUR), principal, card_id)


def _cash_old_card(tl: Timeline, profile: Profile, at: int) -> None:
    """All of a drawdown goes to a card bound more than 7 days (7 d + 2 h or more) earlier."""
    rng = tl.rng
    card_id = tl.name("c")
    tl.card(at, "bind", card_id)
    drawn_at = at + 7 * DAY + 2 * HOUR + rng.randrange(2 * DAY)
    principal = loan_principal(rng)
    loan(tl, drawn_at, principal, rng.choice((1, 3)))
    _outflow(tl, drawn_at + rng.randint(1, 20) * HOUR, principal, card_id)


def _card_swap(tl: Timeline, profile: Profile, at: int) -> None:
    """An old card unbound and a new one bound: two changes."""
    tl.card(at, "unbind", tl.name("c"))
    tl.card(at + tl.rng.randint(1, 48) * MINUTE, "bind", tl.name("c"))


def _churn_3(tl: Timeline, profile: Profile, at: int) -> None:
    """Three account-information changes within a few weeks: one short of four."""
    rng = tl.rng
    spread = rng.randint(1, 25) * DAY
    moments = sorted(at + rng.randrange(spread) for _ in range(3))
    kinds = rng.sample(("bind", "unbind", "phone", "identity"), 3)
    for moment, kind in zip(moments, kinds, strict=True):
        if kind in ("bind", "unbind"):
            tl.card(moment, kind, tl.name("c"))
        else:
            tl.profile(moment, kind)


def _churn_spread(tl: Timeline, profile: Profile, at: int) -> None:
    """Four changes, but the first and the fourth 32 days apart: never 4 in 30 days."""
    for offset in (0, 5 * DAY, 10 * DAY, 32 * DAY):
        tl.card(at + offset, tl.rng.choice(("bind", "unbind")), tl.name("c"))


def _swipe_2(tl: Timeline, profile: Profile, at: int) -> None:
    """Two quick cycles within a month: one short of three."""
    rng = tl.rng
    for offset in (0, rng.randint(3, 20) * DAY):
        quick_cycle(tl, at + offset, rng.randint(2, 40) * HOUR, loan_principal(rng))


def _swipe_spread(tl: Timeline, profile: Profile, at: int) -> None:
    """Three quick cycles whose settlements span more than 31 days."""
    rng = tl.rng
    for offset in (0, 16 * DAY, 33 * DAY):
        quick_cycle(tl, at + offset, rng.randint(2, 40) * HOUR, loan_principal(rng))


def _early_3(tl: Timeline, profile: Profile, at: int) -> None:
    """Three loans settled early (3 to 20 days after drawdown) within 90 days: one short."""
    rng = tl.rng
    drawn_at = at
    for _ in range(3):
        settle_at = drawn_at + rng.randint(3, 20) * DAY
        loan(
            tl,
            drawn_at,
            loan_principal(rng),
            rng.choice((3, 6, 12)),
            repaying=Repaying(settle_at=settle_at),
        )
        drawn_at = at_day(drawn_at + rng.randint(5, 20) * DAY, rng)


def _new_phone(tl: Timeline, profile: Profile, at: int) -> None:
    device_id = new_device(tl, at, profile.primary_at(at))
    profile.devices.append((at, device_id))
    profile.devices.sort()


def _device_day(tl: Timeline, profile: Profile, at: int) -> None:
    """Three distinct devices within a day (handset, a tablet, a borrowed phone)."""
    rng = tl.rng
    profile.primary_only.append((at - 2 * DAY, at + 2 * DAY))
    tl.login(at, profile.primary_at(at))
    for _ in range(2):
        tl.login(at + rng.randint(10, 20 * 60) * MINUTE, tl.name("d"))


def _device_week(tl: Timeline, profile: Profile, at: int) -> None:
    """Five distinct devices within 7 days, never more than two within 24 hours."""
    rng = tl.rng
    profile.primary_only.append((at - 8 * DAY, at + 12 * DAY))
    for step in range(4):
        moment = at + step * 30 * HOUR + rng.randrange(HOUR)
        tl.login(moment - HOUR, profile.primary_at(moment))
        tl.login(moment, tl.name("d"))


def _failed_burst(tl: Timeline, profile: Profile, at: int) -> None:
    """Failed logins from several unknown devices (someone guessing a password)."""
    rng = tl.rng
    for _ in range(rng.randint(4, 8)):
        tl.login(at + rng.randrange(HOUR), tl.name("x"), success=False)
    tl.login(at + HOUR + rng.randrange(HOUR), profile.primary_at(at))


def _score_600(tl: Timeline, profile: Profile, at: int) -> None:
    """A refresh at exactly 600: not *below* 600."""
    tl.score(at, 600)


def _dormant_month(tl: Timeline, profile: Profile, at: int) -> None:
    """A month or more with no logins and no shopping (bills still get paid)."""
    profile.quiet.append((at, at + tl.rng.randint(30, 45) * DAY))


def _gap_89(tl: Timeline, profile: Profile, at: int) -> None:
    """Handled by the loan cadence (one gap of exactly 89 days between drawdowns)."""


FAMILIES: dict[str, dict[str, Scenario]] = {
    "overdue": {"late_short": _late_short, "late_29": _late_29},
    "cards": {
        "cash_ratio": _cash_ratio,
        "cash_late": _cash_late,
        "cash_old_card": _cash_old_card,
        "card_swap": _card_swap,
        "churn_3": _churn_3,
        "churn_spread": _churn_spread,
    },
    "swiping": {"swipe_2": _swipe_2, "swipe_spread": _swipe_spread},
    "early": {"early_3": _early_3},
    "device": {
        "new_phone": _new_phone,
        "device_day": _device_day,
        "device_week": _device_week,
        "failed_burst": _failed_burst,
    },
    "score": {"score_600": _score_600},
    "inactivity": {"gap_89": _gap_89},
    "quiet": {"dormant_month": _dormant_month},
}
"""Scenario name -> stager, grouped so that no two scenarios of a user feed the same rule."""

NEAR_MISSES: tuple[str, ...] = tuple(name for family in FAMILIES.values() for name in family)

# The longest a scenario runs (days), so that it is staged inside the span.
_DURATION_DAYS = {"late_29": 62, "late_short": 40, "swipe_spread": 36, "churn_spread": 33}


def choose_scenarios(rng: Random) -> list[str]:
    """0 to 3 scenarios of distinct families (half of the users get none), and for 15% of
    the users without a device scenario, a new handset."""
    count = rng.choices((0, 1, 2, 3), weights=(50, 30, 15, 5))[0]
    families = rng.sample(sorted(FAMILIES), count)
    if "device" not in families and rng.random() < 0.15:
        return sorted([*(rng.choice(sorted(FAMILIES[f])) for f in families), "new_phone"])
    return sorted(rng.choice(sorted(FAMILIES[family])) for family in families)


def ordinary(tl: Timeline, first_at: int, scenarios: list[str]) -> None:
    """An ordinary borrower: everyday activity from ``first_at`` plus ``scenarios``."""
    rng = tl.rng
    profile = draw_profile(tl, first_at)
    stagers = {name: stager for family in FAMILIES.values() for name, stager in family.items()}
    # Card scenarios first: their outflows keep every later drawdown away from them.
    for name in sorted(scenarios, key=lambda name: name not in FAMILIES["cards"]):
        latest = tl.ends_at - _DURATION_DAYS.get(name, 25) * DAY
        at = at_day(first_at + DAY + rng.randrange(max(DAY, latest - first_at - DAY)), rng)
        stagers[name](tl, profile, at)
    everyday(tl, profile, first_at, tl.ends_at, long_gap_days=89 if "gap_89" in scenarios else None)
