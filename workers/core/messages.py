"""Sentences a customer-service agent can read to the user. Each rule's closure sentence
and phrase live in its module (``workers.core.rules``); the lifecycle's are here."""

from __future__ import annotations

from typing import Any

from workers.core.rules import BY_CODE


def close_message(code: str, evidence: dict[str, Any]) -> str:
    return BY_CODE[code].message(evidence)


def code_text(code: str) -> str:
    """What a reason code stands for, as a phrase ("a low credit score")."""
    return BY_CODE[code].describes


RESTORE_MESSAGE = (
    "Your account has shown good behaviour for {days} days since the last issue "
    "({code_text}), so your credit line can now be reviewed for reopening."
)


def restore_message(code: str, cooling_days: int) -> str:
    return RESTORE_MESSAGE.format(days=cooling_days, code_text=code_text(code))


_UNMET = {
    "COOLING_PERIOD_NOT_OVER": "The waiting period after the closure is not over yet.",
    "INSTALLMENT_PAST_DUE": "A repayment is still past due.",
    "CREDIT_SCORE_TOO_LOW": "The credit score is below what the credit line needs.",
    "NO_RECENT_LOGIN": "There has been no login in the last month.",
    "RISK_STILL_PRESENT": "The behaviour that closed the line is still going on: {what}.",
}


def unmet_message(code: str, rule: str | None = None) -> str:
    """A sentence for an unmet restore condition (``rule``: the rule still true, if any)."""
    what = (
        BY_CODE[rule].describes
        if rule is not None and rule in BY_CODE
        else "a risk rule still holds"
    )
    return _UNMET[code].format(what=what)
