"""Hand-written event histories, one user per reason code of the default policy.

Built with the test event builders of ``tests.core.scenario``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.events import Event
from tests.core.scenario import bill, card, drawdown, login, outflow, pay, profile, score

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def reason_histories(prefix: str = "r", start: datetime = START) -> dict[str, list[Event]]:
    """Reason code -> the events of one user whose line that reason closes."""
    h, d = timedelta(hours=1), timedelta(days=1)
    t = start
    histories: dict[str, list[Event]] = {}

    user = f"{prefix}-low-score"
    histories["LOW_CREDIT_SCORE"] = [
        login(t, "dev-1", user=user),
        score(t + h, 540, user=user),
    ]

    user = f"{prefix}-devices"
    histories["DEVICE_SWITCHING"] = [login(t + i * 2 * h, f"dev-{i}", user=user) for i in range(4)]

    user = f"{prefix}-churn"
    histories["ACCOUNT_INFO_CHURN"] = [
        card(t, "card-1", "bind", user=user),
        profile(t + 2 * d, "phone", user=user),
        card(t + 5 * d, "card-1", "unbind", user=user),
        profile(t + 9 * d, "identity", user=user),
    ]

    user = f"{prefix}-cash-out"
    histories["CASH_OUT"] = [
        card(t, "card-x", "bind", user=user),
        drawdown(t + 2 * h, "loan-1", "5000.00", user=user),
        outflow(t + 3 * h, "4500.00", "card-x", "transfer_out", user=user),
    ]

    user = f"{prefix}-swiping"
    histories["SCORE_SWIPING"] = [
        item
        for i in range(3)
        for item in (
            drawdown(t + i * 5 * d, f"loan-{i}", "2000.00", user=user),
            pay(t + i * 5 * d + 20 * h, f"loan-{i}", "2000.00", settles=True, user=user),
        )
    ]

    user = f"{prefix}-early"
    histories["FREQUENT_EARLY_REPAYMENT"] = [
        item
        for i in range(4)
        for item in (
            drawdown(t + i * 10 * d, f"loan-{i}", "3000.00", term=6, user=user),
            pay(t + i * 10 * d + 4 * d, f"loan-{i}", "3000.00", settles=True, user=user),
        )
    ]

    user = f"{prefix}-overdue"
    due = (t + 3 * d).date()
    histories["SERIOUS_OVERDUE"] = [
        drawdown(t, "loan-1", "1200.00", user=user),
        bill(t + h, "loan-1", 1, due, "400.00", "jiebei", user=user),
        login(t + 35 * d, "dev-1", user=user),
    ]

    user = f"{prefix}-dormant"
    histories["INACTIVITY"] = [
        login(t, "dev-1", user=user),
        login(t + 95 * d, "dev-1", user=user),
    ]
    return histories


def restore_history(user: str, start: datetime = START) -> list[Event]:
    """Closed for a low score, then eligible for a restore after 90 good days."""
    d = timedelta(days=1)
    return [
        score(start, 540, user=user),
        score(start + d, 720, user=user),
        login(start + 80 * d, "dev-1", user=user),
        login(start + 92 * d, "dev-1", user=user),
    ]


def in_time_order(histories: dict[str, list[Event]] | list[list[Event]]) -> list[Event]:
    groups = histories.values() if isinstance(histories, dict) else histories
    return sorted((e for group in groups for e in group), key=lambda e: e.occurred_at)
