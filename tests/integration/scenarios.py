"""Hand-written event histories, one user per reason code of the default policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from schemas.events import EVENT_ADAPTER, Event

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_ids = count(1)


def event(event_type: str, user_id: str, at: datetime, **fields: Any) -> Event:
    body = {
        "type": event_type,
        "event_id": f"{user_id}-{next(_ids)}",
        "user_id": user_id,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        **fields,
    }
    return EVENT_ADAPTER.validate_python(body)


def drawdown(user_id: str, at: datetime, loan_id: str, amount: str, term: int = 3) -> Event:
    return event(
        "transaction",
        user_id,
        at,
        kind="loan_drawdown",
        amount=amount,
        loan_id=loan_id,
        term_months=term,
    )


def settle(user_id: str, at: datetime, loan_id: str, amount: str) -> Event:
    return event(
        "repayment",
        user_id,
        at,
        kind="repayment",
        loan_id=loan_id,
        product="jiebei",
        amount=amount,
        settles_loan=True,
    )


def reason_histories(prefix: str = "r", start: datetime = START) -> dict[str, list[Event]]:
    """Reason code -> the events of one user whose line that reason closes."""
    h, d = timedelta(hours=1), timedelta(days=1)
    t = start
    histories: dict[str, list[Event]] = {}

    user = f"{prefix}-low-score"
    histories["LOW_CREDIT_SCORE"] = [
        event("login", user, t, device_id="dev-1"),
        event("profile_change", user, t + h, field="credit_score", credit_score=540),
    ]

    user = f"{prefix}-devices"
    histories["DEVICE_SWITCHING"] = [
        event("login", user, t + i * 2 * h, device_id=f"dev-{i}") for i in range(4)
    ]

    user = f"{prefix}-churn"
    histories["ACCOUNT_INFO_CHURN"] = [
        event("bank_card_change", user, t, action="bind", card_id="card-1"),
        event("profile_change", user, t + 2 * d, field="phone"),
        event("bank_card_change", user, t + 5 * d, action="unbind", card_id="card-1"),
        event("profile_change", user, t + 9 * d, field="identity"),
    ]

    user = f"{prefix}-cash-out"
    histories["CASH_OUT"] = [
        event("bank_card_change", user, t, action="bind", card_id="card-x"),
        drawdown(user, t + 2 * h, "loan-1", "5000.00"),
        event(
            "transaction", user, t + 3 * h, kind="transfer_out", amount="4500.00", card_id="card-x"
        ),
    ]

    user = f"{prefix}-swiping"
    histories["SCORE_SWIPING"] = [
        item
        for i in range(3)
        for item in (
            drawdown(user, t + i * 5 * d, f"loan-{i}", "2000.00"),
            settle(user, t + i * 5 * d + 20 * h, f"loan-{i}", "2000.00"),
        )
    ]

    user = f"{prefix}-early"
    histories["FREQUENT_EARLY_REPAYMENT"] = [
        item
        for i in range(4)
        for item in (
            drawdown(user, t + i * 10 * d, f"loan-{i}", "3000.00", term=6),
            settle(user, t + i * 10 * d + 4 * d, f"loan-{i}", "3000.00"),
        )
    ]

    user = f"{prefix}-overdue"
    due = (t + 3 * d).date()
    histories["SERIOUS_OVERDUE"] = [
        drawdown(user, t, "loan-1", "1200.00"),
        event(
            "repayment",
            user,
            t + h,
            kind="installment_due",
            loan_id="loan-1",
            product="jiebei",
            installment=1,
            due_date=due.isoformat(),
            amount="400.00",
        ),
        event("login", user, t + 35 * d, device_id="dev-1"),
    ]

    user = f"{prefix}-dormant"
    histories["INACTIVITY"] = [
        event("login", user, t, device_id="dev-1"),
        event("login", user, t + 95 * d, device_id="dev-1"),
    ]
    return histories


def restore_history(user: str, start: datetime = START) -> list[Event]:
    """Closed for a low score, then eligible for a restore after 90 good days."""
    d = timedelta(days=1)
    return [
        event("profile_change", user, start, field="credit_score", credit_score=540),
        event("profile_change", user, start + d, field="credit_score", credit_score=720),
        event("login", user, start + 80 * d, device_id="dev-1"),
        event("login", user, start + 92 * d, device_id="dev-1"),
    ]


def in_time_order(histories: dict[str, list[Event]] | list[list[Event]]) -> list[Event]:
    groups = histories.values() if isinstance(histories, dict) else histories
    return sorted((e for group in groups for e in group), key=lambda e: e.occurred_at)
