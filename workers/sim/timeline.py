"""Building blocks for one simulated user's events: a timeline plus loans, cards and devices.

Times are whole seconds since the Unix epoch (UTC) and amounts whole fen (cents) while a
timeline is built; they become RFC 3339 strings and yuan strings only on the wire.
Events outside the simulated span are dropped, so a behaviour may be cut off at the end
of the span exactly as a real extract would be.
"""

from __future__ import annotations

from bisect import bisect
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from random import Random

DAY = 86_400
HOUR = 3_600
MINUTE = 60

# Activity by local hour in China (UTC+8): quiet at night, peaks at lunch and in the evening.
_LOCAL_HOUR_WEIGHTS = (2, 1, 1, 0.5, 0.5, 0.5, 1, 3, 5, 6, 6, 6, 7, 6, 5, 5, 5, 6, 7, 8, 9, 9, 7, 4)
_UTC_HOURS = tuple((local - 8) % 24 for local in range(24))
_CUMULATIVE = tuple(accumulate(_LOCAL_HOUR_WEIGHTS))


def time_of_day(rng: Random) -> int:
    """Seconds after 00:00 UTC, following the daily cycle of a Chinese user base."""
    draw = rng.random
    hour = _UTC_HOURS[bisect(_CUMULATIVE, draw() * _CUMULATIVE[-1])]
    return hour * HOUR + int(draw() * HOUR)


def at_day(day_start: int, rng: Random) -> int:
    """A moment on the UTC day starting at ``day_start``, following the daily cycle."""
    return day_start - day_start % DAY + time_of_day(rng)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def to_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def to_date(seconds: int) -> date:
    return date(1970, 1, 1) + timedelta(days=seconds // DAY)


def date_start(day: date) -> int:
    """The epoch second at 00:00 UTC of ``day``."""
    return (day - date(1970, 1, 1)).days * DAY


def add_months(day: date, months: int) -> date:
    """Same day of month ``months`` later (calendar months; days past the 28th clamp to 28)."""
    month_index = day.year * 12 + day.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, min(day.day, 28))


def yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(slots=True)
class Timeline:
    """One user's events under construction.

    ``records`` holds ``(occurred_at, sequence, body)``; the body's ``occurred_at`` is the
    epoch second until it is serialised. Events before ``starts_at`` or at/after
    ``ends_at`` are dropped.
    """

    user_id: str
    rng: Random
    starts_at: int
    ends_at: int
    records: list[tuple[int, int, dict[str, object]]] = field(default_factory=list)
    blackouts: list[tuple[int, int]] = field(default_factory=list)
    """Spans where no later :func:`loan` may draw down (it moves past them)."""
    _sequence: int = 0
    _names: int = 0

    def add(self, at: int, event_type: str, **fields: object) -> bool:
        """Append one event; returns False when it falls outside the span."""
        if not self.starts_at <= at < self.ends_at:
            return False
        self._sequence += 1
        body: dict[str, object] = {
            "event_id": f"{self.user_id}-{self._sequence}",
            "type": event_type,
            "user_id": self.user_id,
            "occurred_at": at,
        }
        body.update(fields)
        self.records.append((at, self._sequence, body))
        return True

    def name(self, prefix: str) -> str:
        """A fresh identifier owned by this user (device, card, loan)."""
        self._names += 1
        return f"{self.user_id}-{prefix}{self._names}"

    # -- one method per kind of event ----------------------------------------------------

    def login(self, at: int, device_id: str, *, success: bool = True) -> None:
        if success:
            self.add(at, "login", device_id=device_id)
        else:
            self.add(at, "login", device_id=device_id, success=False)

    def device_change(self, at: int, device_id: str, previous_device_id: str) -> None:
        self.add(at, "device_change", device_id=device_id, previous_device_id=previous_device_id)

    def card(self, at: int, action: str, card_id: str) -> None:
        self.add(at, "bank_card_change", action=action, card_id=card_id)

    def profile(self, at: int, changed: str) -> None:
        self.add(at, "profile_change", field=changed)

    def score(self, at: int, credit_score: int) -> None:
        self.add(at, "profile_change", field="credit_score", credit_score=credit_score)

    def purchase(self, at: int, cents: int, product: str, merchant_id: str) -> None:
        self.add(
            at,
            "transaction",
            kind="purchase",
            amount=yuan(cents),
            product=product,
            merchant_id=merchant_id,
        )

    def move_money(self, at: int, kind: str, cents: int, card_id: str | None = None) -> None:
        """A balance movement: transfer_out / withdrawal (to ``card_id``), transfer_in, refund."""
        if card_id is None:
            self.add(at, "transaction", kind=kind, amount=yuan(cents))
        else:
            self.add(at, "transaction", kind=kind, amount=yuan(cents), card_id=card_id)

    def bill(
        self, at: int, loan_id: str, product: str, installment: int, due: date, cents: int
    ) -> None:
        self.add(
            at,
            "repayment",
            kind="installment_due",
            loan_id=loan_id,
            product=product,
            installment=installment,
            due_date=due.isoformat(),
            amount=yuan(cents),
        )

    def pay(
        self,
        at: int,
        loan_id: str,
        product: str,
        cents: int,
        *,
        installment: int | None = None,
        settles_loan: bool = False,
    ) -> None:
        fields: dict[str, object] = {"kind": "repayment", "loan_id": loan_id, "product": product}
        if installment is not None:
            fields["installment"] = installment
        fields["amount"] = yuan(cents)
        if settles_loan:
            fields["settles_loan"] = True
        self.add(at, "repayment", **fields)


# -- loans ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Repaying:
    """How the borrower repays a loan.

    ``late_days`` maps an installment number to the days after its due date it is paid
    (``None``: never). ``settle_at`` pays everything off at that moment (``settles_loan``);
    installments due after it are never billed. ``stop_at``: bills from then on go unpaid.
    """

    late_days: dict[int, int | None] = field(default_factory=dict)
    settle_at: int | None = None
    stop_at: int | None = None


ON_TIME = Repaying()


def installment_cents(principal: int, term_months: int) -> int:
    """Principal plus 1% a month, spread evenly."""
    return principal * (100 + term_months) // (100 * term_months)


def loan(
    tl: Timeline,
    drawn_at: int,
    principal: int,
    term_months: int,
    product: str = "jiebei",
    repaying: Repaying = ON_TIME,
) -> str:
    """A drawdown with its monthly bills and the borrower's payments; returns the loan id."""
    rng = tl.rng
    for blocked_from, blocked_to in tl.blackouts:
        if blocked_from <= drawn_at <= blocked_to:
            shift = blocked_to + HOUR - drawn_at
            drawn_at += shift
            repaying = replace(
                repaying,
                settle_at=None if repaying.settle_at is None else repaying.settle_at + shift,
                stop_at=None if repaying.stop_at is None else repaying.stop_at + shift,
            )
    loan_id = tl.name("L")
    tl.add(
        drawn_at,
        "transaction",
        kind="loan_drawdown",
        amount=yuan(principal),
        product=product,
        loan_id=loan_id,
        term_months=term_months,
    )
    each = installment_cents(principal, term_months)
    drawn_day = to_date(drawn_at)
    for number in range(1, term_months + 1):
        due = add_months(drawn_day, number)
        billed_at = date_start(due) - 7 * DAY + 2 * HOUR + rng.randrange(HOUR)
        if repaying.settle_at is not None and repaying.settle_at <= billed_at:
            break
        tl.bill(billed_at, loan_id, product, number, due, each)
        if repaying.stop_at is not None and billed_at >= repaying.stop_at:
            continue
        late = repaying.late_days.get(number, 0)
        if late is None:
            continue
        if late > 0:
            paid_at = at_day(date_start(due) + late * DAY, rng)
        else:
            paid_at = max(billed_at + HOUR, at_day(date_start(due) - rng.randrange(6) * DAY, rng))
        if repaying.settle_at is not None and paid_at >= repaying.settle_at:
            break
        tl.pay(paid_at, loan_id, product, each, installment=number)
    if repaying.settle_at is not None:
        tl.pay(
            repaying.settle_at, loan_id, product, principal + principal // 200, settles_loan=True
        )
    return loan_id


def quick_cycle(tl: Timeline, drawn_at: int, settle_after: int, principal: int) -> None:
    """Draw down and settle the whole loan ``settle_after`` seconds later."""
    term = tl.rng.choice((3, 6, 12))
    loan(tl, drawn_at, principal, term, repaying=Repaying(settle_at=drawn_at + settle_after))


def loan_principal(rng: Random) -> int:
    """A drawdown amount in fen: 500 to 50,000 yuan, mostly a few thousand."""
    return int(min(50_000.0, max(500.0, rng.lognormvariate(8.0, 0.8)))) * 100


def new_device(tl: Timeline, at: int, previous_device_id: str) -> str:
    """Bind a new handset and log in from it; returns its id."""
    device_id = tl.name("d")
    tl.device_change(at, device_id, previous_device_id)
    tl.login(at + tl.rng.randrange(1, 10 * MINUTE), device_id)
    return device_id
