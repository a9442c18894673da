"""Builders for table-driven core tests: events with explicit timestamps, and a timeline.

Every event goes through the wire contract (``parse_event`` on JSON), so the tests drive the
core exactly as the edges do. Time is injected: nothing here reads a clock.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas.events import Event, parse_event
from schemas.outputs import Decision, Flag, Output
from workers.core.engine import Engine
from workers.core.policy import Policy, load_policy

POLICY: Policy = load_policy()

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""The start of every scenario (a Monday morning, UTC)."""

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

_ids = itertools.count(1)


def at(days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
    """A moment relative to ``T0``."""
    return T0 + timedelta(days=days, hours=hours, seconds=seconds)


def midnight(day: date) -> datetime:
    """00:00 UTC of a calendar date."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event(
    event_type: str, when: datetime, user: str = "u1", eid: str | None = None, **fields: Any
) -> Event:
    """Any event, built from its JSON form; ``None`` fields are left out."""
    body: dict[str, Any] = {
        "event_id": eid or f"{event_type}-{next(_ids)}",
        "type": event_type,
        "user_id": user,
        "occurred_at": rfc3339(when),
    }
    body.update({key: value for key, value in fields.items() if value is not None})
    return parse_event(json.dumps(body))


def login(when: datetime, device: str = "phone-1", success: bool = True, **kw: Any) -> Event:
    return event("login", when, device_id=device, success=success, **kw)


def device_change(when: datetime, device: str, previous: str | None = None, **kw: Any) -> Event:
    return event("device_change", when, device_id=device, previous_device_id=previous, **kw)


def card(when: datetime, card_id: str, action: str = "bind", **kw: Any) -> Event:
    return event("bank_card_change", when, action=action, card_id=card_id, **kw)


def profile(when: datetime, field: str, score: int | None = None, **kw: Any) -> Event:
    return event("profile_change", when, field=field, credit_score=score, **kw)


def score(when: datetime, value: int, **kw: Any) -> Event:
    return profile(when, "credit_score", value, **kw)


def drawdown(
    when: datetime,
    loan: str,
    amount: str = "1000.00",
    term: int = 3,
    product: str | None = None,
    **kw: Any,
) -> Event:
    return event(
        "transaction",
        when,
        kind="loan_drawdown",
        amount=amount,
        loan_id=loan,
        term_months=term,
        product=product,
        **kw,
    )


def outflow(
    when: datetime, amount: str, card_id: str | None, kind: str = "transfer_out", **kw: Any
) -> Event:
    return event("transaction", when, kind=kind, amount=amount, card_id=card_id, **kw)


def bill(
    when: datetime,
    loan: str,
    installment: int,
    due: date,
    amount: str = "100.00",
    product: str = "jiebei",
    **kw: Any,
) -> Event:
    return event(
        "repayment",
        when,
        kind="installment_due",
        loan_id=loan,
        product=product,
        installment=installment,
        due_date=due.isoformat(),
        amount=amount,
        **kw,
    )


def pay(
    when: datetime,
    loan: str,
    amount: str = "100.00",
    installment: int | None = None,
    settles: bool = False,
    product: str = "jiebei",
    **kw: Any,
) -> Event:
    return event(
        "repayment",
        when,
        kind="repayment",
        loan_id=loan,
        product=product,
        installment=installment,
        amount=amount,
        settles_loan=settles,
        **kw,
    )


def cycle(start: datetime, loan: str, held: timedelta, term: int = 3) -> list[Event]:
    """A loan drawn at ``start`` and settled in full ``held`` later."""
    return [
        drawdown(start, loan, term=term),
        pay(start + held, loan, "1000.00", settles=True),
    ]


class Timeline:
    """One engine driven by events and clock moves, with every output kept in order."""

    def __init__(self, policy: Policy = POLICY) -> None:
        self.engine = Engine(policy)
        self.outputs: list[Output] = []
        self.duplicates = 0

    def apply(self, *events: Event) -> list[Output]:
        produced: list[Output] = []
        for item in events:
            step = self.engine.apply(item)
            self.duplicates += step.duplicate
            produced.extend(step.outputs)
        self.outputs.extend(produced)
        return produced

    def advance(self, now: datetime, *, final: bool = False) -> list[Output]:
        """Move the clock (deadlines fire ``grace`` after they fall due); ``final``: the
        input is complete up to ``now``, as ``lineguard replay --until``."""
        produced = self.engine.advance(now, final=final)
        self.outputs.extend(produced)
        return produced

    def run(self, events: Iterable[Event], until: datetime | None = None) -> Timeline:
        """Apply ``events`` and, like ``lineguard replay --until``, end complete at ``until``."""
        self.apply(*events)
        if until is not None:
            self.advance(until, final=True)
        return self

    @property
    def decisions(self) -> list[Decision]:
        return decisions(self.outputs)

    @property
    def flags(self) -> list[Flag]:
        return flags(self.outputs)

    def line_state(self, user: str = "u1") -> str:
        status = self.engine.status(user)
        assert status is not None
        return str(status["line_state"])


def run(events: Iterable[Event], until: datetime | None = None) -> Timeline:
    return Timeline().run(events, until)


def decisions(outputs: Iterable[Output], kind: str | None = None) -> list[Decision]:
    return [o for o in outputs if isinstance(o, Decision) and kind in (None, o.decision)]


def flags(outputs: Iterable[Output], signal: str | None = None) -> list[Flag]:
    return [o for o in outputs if isinstance(o, Flag) and signal in (None, o.signal)]


def closes(outputs: Iterable[Output]) -> list[Decision]:
    return decisions(outputs, "close_line")


def restores(outputs: Iterable[Output]) -> list[Decision]:
    return decisions(outputs, "restore_eligibility")


def codes(decision: Decision) -> list[str]:
    return [reason.code for reason in decision.reasons]
