"""Installments as facts: when one falls past due, how overdue it is, when it was paid off."""

from __future__ import annotations

from typing import Any

from workers.core.money import yuan
from workers.core.state import Installment, UserState
from workers.core.timeutil import DAY, day_start_us, iso


def past_due_since(item: Installment) -> int:
    """Overdue day 1 begins at 00:00 UTC the day after the due date."""
    return day_start_us(item.due_day + 1)


def completed_at(item: Installment) -> int:
    """When the money attributed to ``item``, taken in time order, reached its bill."""
    total = 0
    for at, amount in item.payments:
        total += amount
        if total >= item.billed:
            return at
    return item.payments[-1][0] if item.payments else 0


def overdue_days(item: Installment, at: int) -> int:
    """Overdue day N begins at 00:00 UTC of due_date + N days; 0 before overdue day 1."""
    return max(0, (at - day_start_us(item.due_day)) // DAY)


def installment_evidence(item: Installment, at: int) -> dict[str, Any]:
    return {
        "loan_id": item.loan_id,
        "installment": item.number,
        "product": item.product,
        "due_date": iso(day_start_us(item.due_day))[:10],
        "overdue_days": overdue_days(item, at),
        "billed": yuan(item.billed),
        "paid": yuan(item.paid),
    }


def unpaid_at(state: UserState, installment: str, deadline: int) -> bool:
    """Whether the installment's bill was not yet paid off at ``deadline`` (events at the
    deadline's instant come after it). An installment no longer known is taken as unpaid."""
    paid = state.paid_installments.get(installment)
    if paid is None:
        return True
    return paid[0] >= deadline
