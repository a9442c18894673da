"""The conditions of the policy's rules, evaluated on a user's state at one instant.

Each ``*_at`` function answers "is this condition true at time ``at``?" with ``None`` for no,
or a ``Truth``: until when it stays true if nothing else happens, and the evidence.
Windows include both ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.core.compiled import Compiled
from workers.core.state import Installment, Loan, UserState
from workers.core.timeutil import DAY, HOUR, day_start_us, iso

FAR_FUTURE = 1 << 62


@dataclass(frozen=True, slots=True)
class Truth:
    until: int
    evidence: dict[str, Any]


TruthFn = Callable[[UserState, Compiled, int], "Truth | None"]


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _window_text(micros: int) -> str:
    if micros % DAY == 0:
        return f"{micros // DAY}d"
    if micros % HOUR == 0:
        return f"{micros // HOUR}h"
    return f"{micros / HOUR:g}h"


def _count_episode(
    items: list[tuple[int, str]], at: int, window: int, threshold: int
) -> tuple[int, list[tuple[int, str]]] | None:
    """Items in [at - window, at]; true while at least ``threshold`` remain in the window."""
    inside = sorted((item for item in items if at - window <= item[0] <= at), reverse=True)
    if len(inside) < threshold:
        return None
    return inside[threshold - 1][0] + window, inside


def devices_at(state: UserState, rules: Compiled, at: int) -> Truth | None:
    """DEVICE_SWITCHING: enough distinct devices within any of the policy's windows."""
    if len(state.devices) < rules.device_min_threshold:
        return None
    best: Truth | None = None
    for window, threshold in rules.device_windows:
        latest: list[tuple[int, str]] = []
        for device, uses in state.devices.items():
            in_window = [t for t in uses if at - window <= t <= at]
            if in_window:
                latest.append((max(in_window), device))
        if len(latest) < threshold:
            continue
        latest.sort(reverse=True)
        until = latest[threshold - 1][0] + window
        if best is None or until > best.until:
            best = Truth(
                until,
                {
                    "window": _window_text(window),
                    "distinct_devices": len(latest),
                    "threshold": threshold,
                    "devices": sorted(device for _, device in latest),
                },
            )
    return best


def churn_at(state: UserState, rules: Compiled, at: int) -> Truth | None:
    """ACCOUNT_INFO_CHURN: card binds/unbinds and phone/identity changes in the window."""
    found = _count_episode(
        [(t, event_id) for t, event_id, _ in state.churn], at, rules.churn_window, rules.churn_min
    )
    if found is None:
        return None
    until, inside = found
    kinds = {event_id: what for _, event_id, what in state.churn}
    return Truth(
        until,
        {
            "window": _window_text(rules.churn_window),
            "changes": len(inside),
            "threshold": rules.churn_min,
            "event_ids": [event_id for _, event_id in sorted(inside)],
            "kinds": sorted({kinds[event_id] for _, event_id in inside}),
        },
    )


def swiping_at(state: UserState, rules: Compiled, at: int) -> Truth | None:
    """SCORE_SWIPING: quick borrow-repay cycles settled within the window."""
    found = _count_episode(state.quick_cycles, at, rules.swipe_window, rules.swipe_min)
    if found is None:
        return None
    until, inside = found
    return Truth(
        until,
        {
            "window": _window_text(rules.swipe_window),
            "quick_cycles": len(inside),
            "threshold": rules.swipe_min,
            "quick_cycle_max": _window_text(rules.quick_cycle),
            "loan_ids": [loan_id for _, loan_id in sorted(inside)],
        },
    )


def early_at(state: UserState, rules: Compiled, at: int) -> Truth | None:
    """FREQUENT_EARLY_REPAYMENT: early settlements within the window."""
    found = _count_episode(state.early_settlements, at, rules.early_window, rules.early_min)
    if found is None:
        return None
    until, inside = found
    return Truth(
        until,
        {
            "window": _window_text(rules.early_window),
            "early_settlements": len(inside),
            "threshold": rules.early_min,
            "loan_ids": [loan_id for _, loan_id in sorted(inside)],
        },
    )


def low_score_at(state: UserState, rules: Compiled, at: int) -> Truth | None:
    """LOW_CREDIT_SCORE: the latest credit score is below the minimum."""
    if state.score is None or state.score >= rules.min_score:
        return None
    return Truth(FAR_FUTURE, score_evidence(rules, state.score, state.score_at or at))


def score_evidence(rules: Compiled, score: int, scored_at: int) -> dict[str, Any]:
    return {"credit_score": score, "min_score": rules.min_score, "scored_at": iso(scored_at)}


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
        "billed": _yuan(item.billed),
        "paid": _yuan(item.paid),
    }


def serious_at(state: UserState, rules: Compiled, at: int) -> Truth | None:
    """SERIOUS_OVERDUE: an installment unpaid the policy's days after its due date."""
    worst = [
        item
        for item in state.installments.values()
        if item.paid < item.billed and overdue_days(item, at) >= rules.serious_days
    ]
    if not worst:
        return None
    worst.sort(key=lambda item: (item.due_day, item.loan_id, item.number))
    return Truth(
        FAR_FUTURE,
        {
            "threshold_days": rules.serious_days,
            "installments": [installment_evidence(item, at) for item in worst[:8]],
        },
    )


def cash_out_for(
    state: UserState, rules: Compiled, loan: Loan
) -> tuple[dict[str, Any], int] | None:
    """CASH_OUT for one drawdown: outflows to freshly bound cards within its window; the
    evidence, and when (in time order) the outflows reached the ratio."""
    end = loan.drawn_at + rules.cash_window
    hits = []
    for outflow in state.outflows:
        if not loan.drawn_at <= outflow.at <= end:
            continue
        binds = state.card_binds.get(outflow.card_id, [])
        fresh = [b for b in binds if outflow.at - rules.card_window <= b <= outflow.at]
        if fresh:
            hits.append((outflow, max(fresh)))
    total = sum(outflow.amount for outflow, _ in hits)
    if not hits or total < rules.cash_ratio * loan.amount:
        return None
    hits.sort(key=lambda hit: hit[0].at)
    running, completed_at = 0, hits[-1][0].at
    for outflow, _ in hits:
        running += outflow.amount
        if running >= rules.cash_ratio * loan.amount:
            completed_at = outflow.at
            break
    evidence = {
        "loan_id": loan.loan_id,
        "drawdown_event_id": loan.event_id,
        "drawn_amount": _yuan(loan.amount),
        "outflow_amount": _yuan(total),
        "ratio": round(total / loan.amount, 4),
        "threshold_ratio": rules.cash_ratio,
        "window": _window_text(rules.cash_window),
        "outflows": [
            {
                "event_id": outflow.event_id,
                "amount": _yuan(outflow.amount),
                "card_id": outflow.card_id,
                "card_bound_at": iso(bound_at),
            }
            for outflow, bound_at in hits
        ],
    }
    return evidence, completed_at


def cash_out_active_at(state: UserState, rules: Compiled, at: int) -> Truth | None:
    """CASH_OUT as a standing condition: a flagged drawdown whose window holds ``at``."""
    for loan in state.loans.values():
        if loan.cash_out_flagged and loan.drawn_at <= at <= loan.drawn_at + rules.cash_window:
            found = cash_out_for(state, rules, loan)
            if found is not None:
                return Truth(loan.drawn_at + rules.cash_window, found[0])
    return None


def inactivity_deadline(state: UserState, rules: Compiled) -> int | None:
    """When INACTIVITY fires: 90 days after the later of first event, last drawdown, eligibility."""
    if state.first_at is None:
        return None
    anchor = max(state.first_at, state.last_drawdown_at or 0, state.eligible_at or 0)
    return anchor + rules.inactivity


def inactivity_evidence(state: UserState, rules: Compiled) -> dict[str, Any]:
    return {
        "days_without_drawdown": rules.inactivity // DAY,
        "last_drawdown_at": iso(state.last_drawdown_at) if state.last_drawdown_at else None,
        "first_event_at": iso(state.first_at) if state.first_at is not None else None,
        "restore_eligible_at": iso(state.eligible_at) if state.eligible_at else None,
    }
