"""Input event contracts: one JSON object per Kafka message, key = ``user_id``.

Every model is frozen and forbids unknown fields. ``occurred_at`` must be an
RFC 3339 string with seconds and an offset (or ``Z``); the offset is kept (comparisons
and the core work on instants; every output timestamp is UTC).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

SCHEMA_VERSION = 1

EVENT_TYPES: tuple[str, ...] = (
    "login",
    "device_change",
    "bank_card_change",
    "profile_change",
    "transaction",
    "repayment",
)


_AFTER_YEAR = r"-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
_RFC3339 = re.compile(r"\d{4}" + _AFTER_YEAR)


def _require_string(value: object) -> object:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 timestamp with seconds and an offset, e.g. 2026-01-31T09:30:00Z"
        )
    return value


FIRST_YEAR, LAST_YEAR = 2000, 2100
"""Event times and due dates are written with a year from 2000 to 2100 (as written, in the
timestamp's own offset): anything else is a producer's bug (an epoch zero, a year typed
wrong) that would otherwise open or expire years of windows at once."""

_YEAR_PATTERN = r"(20[0-9]{2}|2100)"


def _within_years(value: datetime | date) -> datetime | date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"the year must be from {FIRST_YEAR} to {LAST_YEAR}, got {value.year} "
            f"({value.isoformat()})"
        )
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_require_string),
    AfterValidator(_within_years),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": f"^{_YEAR_PATTERN}{_AFTER_YEAR}$",
        }
    ),
]
"""An RFC 3339 timestamp with seconds and an offset, written with a year from 2000 to 2100."""

DueDate = Annotated[
    date,
    AfterValidator(_within_years),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": f"^{_YEAR_PATTERN}-[0-9]{{2}}-[0-9]{{2}}$",
            "description": f"A calendar date, YYYY-MM-DD; year {FIRST_YEAR} to {LAST_YEAR}.",
        }
    ),
]
"""A calendar date with a year from 2000 to 2100."""

MAX_INSTALLMENTS = 1000

_AMOUNT_TEXT = re.compile(r"[0-9]{1,13}(\.[0-9]{1,2})?")
_AMOUNT_DESCRIPTION = (
    "Yuan, strictly positive, at most 13 digits before the point and 2 after it: a JSON "
    "number, or a string of plain digits with an optional point (no sign, exponent or spaces)."
)


def _plain_amount_text(value: object) -> object:
    if isinstance(value, str) and not _AMOUNT_TEXT.fullmatch(value):
        raise ValueError("an amount string must be plain digits, at most 2 decimals, e.g. 12.50")
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_plain_amount_text),
    Field(gt=0, decimal_places=2, max_digits=15),
    # Written out rather than derived: what the contract accepts must not change with the
    # version of the library that generates the schema.
    WithJsonSchema(
        {
            "description": _AMOUNT_DESCRIPTION,
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 9999999999999.99},
                {"type": "string", "pattern": f"^{_AMOUNT_TEXT.pattern}$"},
            ],
        }
    ),
]
"""Yuan, strictly positive, at most two decimals; a JSON number or a plain decimal string."""

Identifier = Annotated[str, Field(min_length=1, max_length=128)]

Product = Literal["jiebei", "huabei", "reserve", "balance"]
CreditProduct = Literal["jiebei", "huabei", "reserve"]


class EventBase(BaseModel):
    """Fields shared by every event."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    event_id: Identifier = Field(
        description="Unique per logical event; a redelivered copy keeps it."
    )
    user_id: str = Field(min_length=1, max_length=64, description="Also the Kafka message key.")
    occurred_at: Timestamp = Field(
        description="Event time, RFC 3339 with offset or Z; year 2000 to 2100."
    )
    schema_version: Literal[1] = Field(default=1, description="Contract version of this event.")


class Login(EventBase):
    type: Literal["login"]
    device_id: Identifier
    ip: str | None = Field(default=None, max_length=64)
    success: StrictBool = Field(
        default=True, description="Only successful logins count as device use."
    )


class DeviceChange(EventBase):
    type: Literal["device_change"]
    device_id: Identifier = Field(description="The newly bound device.")
    previous_device_id: Identifier | None = None


class BankCardChange(EventBase):
    type: Literal["bank_card_change"]
    action: Literal["bind", "unbind"]
    card_id: Identifier = Field(description="Tokenised card reference.")


class ProfileChange(EventBase):
    type: Literal["profile_change"]
    field: Literal["phone", "identity", "occupation", "address", "credit_score"]
    credit_score: StrictInt | None = Field(
        default=None, ge=350, le=950, description="Required exactly when field is credit_score."
    )

    @model_validator(mode="after")
    def _score_matches_field(self) -> Self:
        if self.field == "credit_score" and self.credit_score is None:
            raise ValueError("credit_score is required when field is 'credit_score'")
        if self.field != "credit_score" and self.credit_score is not None:
            raise ValueError("credit_score is only allowed when field is 'credit_score'")
        return self


class Transaction(EventBase):
    type: Literal["transaction"]
    kind: Literal[
        "loan_drawdown", "purchase", "transfer_out", "withdrawal", "transfer_in", "refund"
    ]
    amount: Amount
    product: Product = Field(
        default="balance",
        description="Default balance; a loan_drawdown must be jiebei or reserve (default jiebei).",
    )
    loan_id: Identifier | None = Field(default=None, description="Required for loan_drawdown.")
    term_months: StrictInt | None = Field(
        default=None, ge=1, le=12, description="Required for loan_drawdown."
    )
    card_id: Identifier | None = Field(
        default=None, description="Destination card of a transfer_out or withdrawal."
    )
    merchant_id: Identifier | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_drawdown_product(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "loan_drawdown" and "product" not in data:
            return {**data, "product": "jiebei"}
        return data

    @model_validator(mode="after")
    def _drawdown_fields(self) -> Self:
        if self.kind == "loan_drawdown":
            if self.product not in ("jiebei", "reserve"):
                raise ValueError("a loan_drawdown's product must be 'jiebei' or 'reserve'")
            if self.loan_id is None or self.term_months is None:
                raise ValueError("a loan_drawdown requires loan_id and term_months")
        return self


class Repayment(EventBase):
    type: Literal["repayment"]
    kind: Literal["installment_due", "repayment"] = Field(
        description="installment_due: a bill; repayment: money paid."
    )
    loan_id: Identifier
    product: CreditProduct
    installment: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_INSTALLMENTS,
        description="Required for installment_due, optional for repayment; 1 to 1000.",
    )
    due_date: DueDate | None = Field(default=None, description="Required for installment_due.")
    amount: Amount
    settles_loan: StrictBool = Field(
        default=False,
        description="True when this payment clears the whole loan (ignored on a bill).",
    )

    @model_validator(mode="after")
    def _bill_fields(self) -> Self:
        if self.kind == "installment_due" and (self.installment is None or self.due_date is None):
            raise ValueError("an installment_due requires installment and due_date")
        return self


Event = Annotated[
    Login | DeviceChange | BankCardChange | ProfileChange | Transaction | Repayment,
    Field(discriminator="type"),
]
"""Any input event, chosen by its ``type``."""

EVENT_MODELS: dict[str, type[EventBase]] = {
    "login": Login,
    "device_change": DeviceChange,
    "bank_card_change": BankCardChange,
    "profile_change": ProfileChange,
    "transaction": Transaction,
    "repayment": Repayment,
}

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(raw: bytes | str) -> Event:
    """Decode and validate one JSON event; raises ``pydantic.ValidationError``."""
    return EVENT_ADAPTER.validate_json(raw)


def event_to_json(event: EventBase) -> bytes:
    """The canonical wire form of an event (amounts as strings, optional fields left out)."""
    return event.model_dump_json(exclude_none=True).encode()


__all__ = [
    "EVENT_ADAPTER",
    "EVENT_MODELS",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "BankCardChange",
    "CreditProduct",
    "DeviceChange",
    "Event",
    "EventBase",
    "Login",
    "ProfileChange",
    "Repayment",
    "Transaction",
    "event_to_json",
    "parse_event",
]
