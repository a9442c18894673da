"""Everyday activity shared by every simulated user: logins, shopping, bills, scores, loans.

Nothing here trips a rule on its own: at most two devices, on-time payments, scores of
605 or more, no card or phone changes, and a drawdown at least every ``max_gap_days``.
Archetypes and near misses add the interesting parts on top.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from random import Random

from workers.sim.timeline import (
    DAY,
    HOUR,
    Timeline,
    add_months,
    at_day,
    date_start,
    loan,
    loan_principal,
    to_date,
)

Interval = tuple[int, int]


@dataclass(slots=True)
class Profile:
    """Traits of one user that stay put for the whole span."""

    activity: float
    """Multiplier of login and shopping rates, heavy-tailed across users (Zipf-like)."""
    devices: list[tuple[int, str]]
    """``(since, device_id)``: the primary handset from each moment on."""
    secondary_device: str | None
    base_score: int
    salary_day: int | None
    uses_huabei: bool
    primary_only: list[Interval] = field(default_factory=list)
    """Spans when only the primary handset is used (a device near miss is being staged)."""
    quiet: list[Interval] = field(default_factory=list)
    """Spans with no logins or shopping at all (a dormant month)."""

    def primary_at(self, at: int) -> str:
        if len(self.devices) == 1:
            return self.devices[0][1]
        index = bisect_right([since for since, _ in self.devices], at) - 1
        return self.devices[max(index, 0)][1]


def draw_profile(tl: Timeline, starts_at: int) -> Profile:
    rng = tl.rng
    activity = min(25.0, 0.3 * rng.paretovariate(1.6))
    return Profile(
        activity=activity,
        devices=[(starts_at, tl.name("d"))],
        secondary_device=tl.name("d") if rng.random() < 0.25 else None,
        base_score=rng.randint(640, 820),
        salary_day=rng.randint(1, 28) if rng.random() < 0.6 else None,
        uses_huabei=rng.random() < 0.7,
    )


def _inside(at: int, spans: list[Interval]) -> bool:
    return bool(spans) and any(start <= at <= end for start, end in spans)


def _arrivals(rng: Random, start: int, end: int, per_day: float) -> list[int]:
    """Days of a Poisson process at ``per_day``, each placed on the daily cycle."""
    moments: list[int] = []
    if per_day <= 0:
        return moments
    at = float(start)
    while True:
        at += rng.expovariate(per_day) * DAY
        if at >= end:
            return moments
        moments.append(at_day(int(at), rng))


def logins(tl: Timeline, profile: Profile, start: int, end: int) -> None:
    rng = tl.rng
    tl.login(start, profile.primary_at(start))
    for at in _arrivals(rng, start, end, 0.25 * profile.activity):
        if at < start or _inside(at, profile.quiet):
            continue
        device = profile.primary_at(at)
        if (
            profile.secondary_device is not None
            and rng.random() < 0.2
            and not _inside(at, profile.primary_only)
        ):
            device = profile.secondary_device
        tl.login(at, device)
        if rng.random() < 0.01:  # a mistyped password, then the right one
            tl.login(at - 40, device, success=False)


def shopping(tl: Timeline, profile: Profile, start: int, end: int) -> None:
    """Purchases (on huabei or from balance), salary, refunds and huabei's monthly bills."""
    rng = tl.rng
    huabei_by_month: dict[date, int] = {}
    for at in _arrivals(rng, start, end, 0.12 * profile.activity):
        if at < start or _inside(at, profile.quiet):
            continue
        cents = int(min(20_000.0, rng.lognormvariate(4.2, 1.1)) * 100) + 1
        product = "huabei" if profile.uses_huabei and rng.random() < 0.6 else "balance"
        tl.purchase(at, cents, product, f"m{int(rng.paretovariate(1.1)) % 5000}")
        if product == "huabei":
            month = to_date(at).replace(day=1)
            huabei_by_month[month] = huabei_by_month.get(month, 0) + cents
        if rng.random() < 0.03:
            tl.move_money(at + rng.randrange(1, 20) * DAY, "refund", cents)
    for month, cents in huabei_by_month.items():
        statement = add_months(month, 1)
        due = statement.replace(day=10)
        billed_at = date_start(statement) + HOUR + rng.randrange(3 * HOUR)
        loan_id = f"{tl.user_id}-hb{month.year}{month.month:02d}"
        tl.bill(billed_at, loan_id, "huabei", 1, due, cents)
        paid_at = at_day(date_start(due) - rng.randrange(8) * DAY, rng)
        tl.pay(max(paid_at, billed_at + HOUR), loan_id, "huabei", cents, installment=1)
    if profile.salary_day is not None:
        month = to_date(start).replace(day=1)
        while date_start(month) < end:
            payday = date_start(month.replace(day=profile.salary_day)) + 2 * HOUR
            if payday >= start:
                tl.move_money(payday, "transfer_in", rng.randint(3_000, 30_000) * 100)
            month = add_months(month, 1)


def profile_noise(tl: Timeline, profile: Profile, start: int, end: int, floor: int = 605) -> None:
    """Monthly credit-score refreshes (never below ``floor``) and rare harmless changes."""
    rng = tl.rng
    at = start + rng.randrange(30) * DAY
    while at < end:
        tl.score(at_day(at, rng), max(floor, min(950, profile.base_score + rng.randint(-20, 20))))
        at += 30 * DAY + rng.randrange(-2, 3) * DAY
    for at in _arrivals(rng, start, end, 1 / 150):
        tl.profile(at, rng.choice(("occupation", "address")))


def regular_loans(
    tl: Timeline, start: int, end: int, *, max_gap_days: int = 80, long_gap_days: int | None = None
) -> list[int]:
    """Drawdowns from ``start`` until ``end``, never more than ``max_gap_days`` apart.

    ``long_gap_days`` makes one gap exactly that long (the inactivity near miss).
    Loans are repaid on time; returns the drawdown moments.
    """
    rng = tl.rng
    drawn: list[int] = []
    at = at_day(start + rng.randint(1, min(30, max_gap_days - 1)) * DAY, rng)
    long_gap_after = rng.randrange(3) if long_gap_days is not None else -1
    while at < end:
        drawn.append(at)
        product = "reserve" if rng.random() < 0.2 else "jiebei"
        term = 1 if product == "reserve" else rng.choice((1, 3, 3, 6, 12))
        loan(tl, at, loan_principal(rng), term, product)
        if len(drawn) - 1 == long_gap_after and long_gap_days is not None:
            at += long_gap_days * DAY
        else:
            at = at_day(at + rng.randint(20, max_gap_days) * DAY, rng)
    return drawn


def everyday(
    tl: Timeline,
    profile: Profile,
    start: int,
    end: int,
    *,
    loans_until: int | None = None,
    long_gap_days: int | None = None,
) -> None:
    """Logins, shopping and profile refreshes over [start, end); loans until ``loans_until``."""
    logins(tl, profile, start, end)
    shopping(tl, profile, start, end)
    profile_noise(tl, profile, start, end)
    loans_end = end if loans_until is None else loans_until
    regular_loans(tl, start, loans_end, long_gap_days=long_gap_days)
