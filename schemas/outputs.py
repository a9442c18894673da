"""Output contracts: flags, decisions and dead letters written by lineguard."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

RuleCode = Literal[
    "SERIOUS_OVERDUE",
    "CASH_OUT",
    "SCORE_SWIPING",
    "FREQUENT_EARLY_REPAYMENT",
    "DEVICE_SWITCHING",
    "ACCOUNT_INFO_CHURN",
    "INACTIVITY",
    "LOW_CREDIT_SCORE",
    "CARD_BIND_UNBIND",
    "MANUAL_REVIEW",
]
"""The rules' reason codes, written out here only: the rest derive from this (the core's
rule registry, ``workers/core/rules``, has one module per code, in this order)."""

REASON_CODES: tuple[str, ...] = get_args(RuleCode)

CORRECTION_CODE = "LATE_DATA_CORRECTION"
"""The reason of a ``close_line_retracted`` decision."""

ReasonCode = Literal[RuleCode, "LATE_DATA_CORRECTION"]
Signal = Literal["OVERDUE", RuleCode]
LineState = Literal["open", "closed", "restore_eligible"]
ErrorKind = Literal[
    "not_json",
    "invalid_contract",
    "unknown_type",
    "wrong_topic",
    "wrong_partition",
    "from_the_future",
    "too_old",
    "after_until",
    "internal",
]
"""Why an input is not applied: the ``error_kind`` of a dead letter or a replay rejection.

``wrong_partition``: the record's partition is not the one its key maps to. ``from_the_future``:
``occurred_at`` is further ahead of wall time than the allowed skew. ``too_old``: older than
the partition's clock by more than the allowed age. ``after_until``: (replay) dated after
``--until``. ``internal``: the decision core failed on it (a defect, never the input's fault
alone)."""
DecisionKind = Literal["close_line", "restore_eligibility", "close_line_retracted"]
PolicyRole = Literal["live", "challenger"]
"""Which published policy made an output: ``live`` (``lineguard.decisions`` and
``lineguard.flags``) or ``challenger`` (``lineguard.shadow-decisions`` only, never acted on)."""


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    policy_role: PolicyRole = Field(
        default="live",
        description=(
            "The policy that made it: `live`, or `challenger` (a would-be output, written "
            "only to the shadow-decisions topic; never acted on)."
        ),
    )


class Flag(_Output):
    """A risk signal that became true, or (with ``retracts``) the withdrawal of one that a
    late event proved wrong. Flags are the negative signals of the lifecycle."""

    flag_id: str = Field(description="Deterministic: the same history yields the same id.")
    user_id: str
    signal: Signal
    overdue_days: int | None = Field(
        default=None, description="For OVERDUE: the milestone reached (1, 7, 15, 30 by default)."
    )
    evidence: dict[str, Any] = Field(description="The numbers that tripped the signal.")
    raised_at: datetime = Field(
        description=(
            "The trigger event's occurred_at; for time-triggered signals the deadline; for a "
            "retraction the late event's occurred_at."
        )
    )
    trigger_event_id: str | None = Field(description="Null when time triggered it.")
    policy_version: str
    retracts: str | None = Field(
        default=None,
        description=(
            "Set on a retraction: the flag_id of an earlier time-triggered flag that a late "
            "event showed did not hold. The retracted flag no longer counts."
        ),
    )


class Reason(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: ReasonCode
    message: str = Field(description="A sentence a customer-service agent can read to the user.")
    evidence: dict[str, Any]


class Decision(_Output):
    """A change of a user's credit line, for downstream services.

    ``close_line_retracted`` withdraws an earlier ``close_line`` (named by ``supersedes``)
    whose time-triggered reasons a late event showed did not hold: the line is open again.
    """

    decision_id: str = Field(
        description="Deterministic: a redelivered input yields the same id; consumers dedupe on it."
    )
    user_id: str
    decision: DecisionKind
    reasons: list[Reason]
    decided_at: datetime
    trigger_event_id: str | None = Field(description="Null when time triggered it.")
    policy_version: str
    line_state: LineState = Field(description="The line's state after this decision.")
    next_review_at: datetime | None = Field(
        default=None, description="For close_line: earliest moment a restore can be evaluated."
    )
    supersedes: str | None = Field(
        default=None,
        description="For close_line_retracted: the decision_id of the withdrawn close_line.",
    )


class DeadLetter(BaseModel):
    """Body of a dead-letter record's reason; the original bytes travel as the record value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    error_kind: ErrorKind
    error: str
    source_topic: str
    source_partition: int
    source_offset: int
    expected_partition: int | None = Field(
        default=None, description="For wrong_partition: where the record's key belongs."
    )
    original_size: int | None = Field(
        default=None,
        description="Set when the value was cut down to fit: the original value's size in bytes.",
    )
    original_sha256: str | None = Field(
        default=None, description="Set when the value was cut down: SHA-256 of the original, hex."
    )


Output = Flag | Decision

OUTPUT_ADAPTER: TypeAdapter[Output] = TypeAdapter(Output)


def parse_output(raw: bytes | str) -> Output:
    """Decode and validate one JSON flag or decision (a record value of ``lineguard.flags``,
    ``lineguard.decisions`` or ``lineguard.shadow-decisions``, or a line ``lineguard replay``
    wrote); raises ``pydantic.ValidationError``."""
    return OUTPUT_ADAPTER.validate_json(raw)


class Rejection(BaseModel):
    """One rejected input line of ``lineguard replay`` (written to ``--rejects``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    file: str
    line: int = Field(ge=1)
    error_kind: ErrorKind
    reason: str


__all__ = [
    "CORRECTION_CODE",
    "OUTPUT_ADAPTER",
    "REASON_CODES",
    "DeadLetter",
    "Decision",
    "DecisionKind",
    "ErrorKind",
    "Flag",
    "LineState",
    "Output",
    "Reason",
    "ReasonCode",
    "Rejection",
    "RuleCode",
    "Signal",
    "parse_output",
]
