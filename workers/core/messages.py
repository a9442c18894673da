"""Sentences a customer-service agent can read to the user, one per reason code."""

from __future__ import annotations

from typing import Any

_PRODUCT_NAMES = {"jiebei": "Jiebei loan", "huabei": "Huabei", "reserve": "reserve fund"}

_CLOSE: dict[str, str] = {
    "SERIOUS_OVERDUE": (
        "A repayment on your {product} has been overdue for {days} days or more, "
        "so your credit line has been closed."
    ),
    "CASH_OUT": (
        "Money borrowed on your credit line was moved to a newly added bank card right after "
        "it was drawn, so your credit line has been closed."
    ),
    "SCORE_SWIPING": (
        "Several loans were borrowed and repaid within a day or two of each other in a short "
        "period, so your credit line has been closed."
    ),
    "FREQUENT_EARLY_REPAYMENT": (
        "Several loans were repaid in full long before they were due in recent months, "
        "so your credit line has been closed."
    ),
    "DEVICE_SWITCHING": (
        "Your account was used on many different devices in a short time, so your credit "
        "line has been closed to protect you."
    ),
    "ACCOUNT_INFO_CHURN": (
        "Your bank cards or verified phone or identity details were changed many times "
        "recently, so your credit line has been closed to protect you."
    ),
    "INACTIVITY": (
        "You have not borrowed on your credit line for {days} days, so it has been closed."
    ),
    "LOW_CREDIT_SCORE": (
        "Your credit score of {score} is below the {minimum} this credit line needs, "
        "so it has been closed."
    ),
}

RESTORE_MESSAGE = (
    "Your account has shown good behaviour for {days} days since the last issue "
    "({code_text}), so your credit line can now be reviewed for reopening."
)

_CODE_TEXT = {
    "SERIOUS_OVERDUE": "a seriously overdue repayment",
    "CASH_OUT": "borrowed money moved to a new card",
    "SCORE_SWIPING": "repeated quick borrow-and-repay cycles",
    "FREQUENT_EARLY_REPAYMENT": "frequent early repayment",
    "DEVICE_SWITCHING": "frequent device changes",
    "ACCOUNT_INFO_CHURN": "frequent account detail changes",
    "INACTIVITY": "a long period without borrowing",
    "LOW_CREDIT_SCORE": "a low credit score",
}


def close_message(code: str, evidence: dict[str, Any]) -> str:
    if code == "SERIOUS_OVERDUE":
        first = (evidence.get("installments") or [{}])[0]
        product = _PRODUCT_NAMES.get(str(first.get("product")), "credit product")
        return _CLOSE[code].format(product=product, days=evidence.get("threshold_days", 30))
    if code == "INACTIVITY":
        return _CLOSE[code].format(days=evidence.get("days_without_drawdown", 90))
    if code == "LOW_CREDIT_SCORE":
        return _CLOSE[code].format(
            score=evidence.get("credit_score"), minimum=evidence.get("min_score")
        )
    return _CLOSE[code]


def code_text(code: str) -> str:
    """What a reason code stands for, as a phrase ("a low credit score")."""
    return _CODE_TEXT[code]


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
    return _UNMET[code].format(what=_CODE_TEXT.get(rule or "", "a risk rule still holds"))
