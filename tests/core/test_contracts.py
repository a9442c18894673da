"""Event contracts: every type valid and invalid, read literally from the specification."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import parse_event

BASE: dict[str, Any] = {
    "event_id": "e-1",
    "user_id": "u-1",
    "occurred_at": "2026-03-02T09:00:00Z",
}

MINIMAL: dict[str, dict[str, Any]] = {
    "login": {"device_id": "phone-1"},
    "device_change": {"device_id": "phone-2"},
    "bank_card_change": {"action": "bind", "card_id": "card-1"},
    "profile_change": {"field": "phone"},
    "transaction": {"kind": "purchase", "amount": "12.50"},
    "repayment": {"kind": "repayment", "loan_id": "L1", "product": "jiebei", "amount": "10"},
}


def body(event_type: str, **changes: Any) -> dict[str, Any]:
    """A minimal valid event of ``event_type`` with ``changes`` applied (None removes a key)."""
    data = {**BASE, "type": event_type, **MINIMAL[event_type], **changes}
    return {key: value for key, value in data.items() if value is not None}


def parse(data: dict[str, Any]) -> Any:
    return parse_event(json.dumps(data))


def drawdown(**changes: Any) -> dict[str, Any]:
    fields = {"kind": "loan_drawdown", "amount": "1000.00", "loan_id": "L1", "term_months": 3}
    return body("transaction", **{**fields, **changes})


def installment_due(**changes: Any) -> dict[str, Any]:
    fields = {"kind": "installment_due", "installment": 1, "due_date": "2026-03-10"}
    return body("repayment", **{**fields, **changes})


VALID: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (event body, expected attribute values)
    "login-minimal": (body("login"), {"success": True, "ip": None, "schema_version": 1}),
    "login-failed-with-ip": (body("login", success=False, ip="10.0.0.1"), {"success": False}),
    "device-change": (body("device_change"), {"previous_device_id": None}),
    "device-change-with-previous": (
        body("device_change", previous_device_id="phone-1"),
        {"previous_device_id": "phone-1"},
    ),
    "card-bind": (body("bank_card_change"), {"action": "bind"}),
    "card-unbind": (body("bank_card_change", action="unbind"), {"action": "unbind"}),
    "profile-phone": (body("profile_change"), {"credit_score": None}),
    "profile-identity": (body("profile_change", field="identity"), {"field": "identity"}),
    "profile-occupation": (body("profile_change", field="occupation"), {}),
    "profile-address": (body("profile_change", field="address"), {}),
    "credit-score-350": (
        body("profile_change", field="credit_score", credit_score=350),
        {"credit_score": 350},
    ),
    "credit-score-950": (
        body("profile_change", field="credit_score", credit_score=950),
        {"credit_score": 950},
    ),
    "purchase-defaults-to-balance": (body("transaction"), {"product": "balance"}),
    "purchase-on-huabei": (body("transaction", product="huabei"), {"product": "huabei"}),
    "amount-json-number": (body("transaction", amount=19.99), {"amount": Decimal("19.99")}),
    "amount-json-string": (body("transaction", amount="19.99"), {"amount": Decimal("19.99")}),
    "amount-json-integer": (body("transaction", amount=5), {"amount": Decimal(5)}),
    "amount-one-fen": (body("transaction", amount=0.01), {"amount": Decimal("0.01")}),
    "transfer-out-with-card": (
        body("transaction", kind="transfer_out", card_id="card-1"),
        {"card_id": "card-1"},
    ),
    "withdrawal-without-card": (body("transaction", kind="withdrawal"), {"card_id": None}),
    "transfer-in": (body("transaction", kind="transfer_in"), {"kind": "transfer_in"}),
    "refund-with-merchant": (
        body("transaction", kind="refund", merchant_id="m-1"),
        {"merchant_id": "m-1"},
    ),
    "drawdown-defaults-to-jiebei": (drawdown(), {"product": "jiebei", "term_months": 3}),
    "drawdown-reserve": (drawdown(product="reserve"), {"product": "reserve"}),
    "drawdown-term-1": (drawdown(term_months=1), {"term_months": 1}),
    "drawdown-term-12": (drawdown(term_months=12), {"term_months": 12}),
    "installment-due": (
        installment_due(),
        {"installment": 1, "due_date": date(2026, 3, 10), "settles_loan": False},
    ),
    "installment-due-huabei": (installment_due(product="huabei"), {"product": "huabei"}),
    "repayment-without-installment": (body("repayment"), {"installment": None}),
    "repayment-for-installment": (body("repayment", installment=2), {"installment": 2}),
    "repayment-settles-loan": (
        body("repayment", settles_loan=True, product="reserve"),
        {"settles_loan": True},
    ),
    "offset-kept-same-instant": (
        body("login", occurred_at="2026-03-02T17:00:00+08:00"),
        {"occurred_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC)},
    ),
    "fractional-seconds": (
        body("login", occurred_at="2026-03-02T09:00:00.250Z"),
        {"occurred_at": datetime(2026, 3, 2, 9, 0, 0, 250000, tzinfo=UTC)},
    ),
    "schema-version-1": (body("login", schema_version=1), {"schema_version": 1}),
    "event-id-128-chars": (body("login", event_id="e" * 128), {}),
    "user-id-64-chars": (body("login", user_id="u" * 64), {}),
    "year-2000": (body("login", occurred_at="2000-01-01T00:00:00Z"), {}),
    "year-2100-as-written": (body("login", occurred_at="2100-12-31T23:59:59-05:00"), {}),
    "installment-1000": (installment_due(installment=1000), {"installment": 1000}),
    "due-date-2100": (installment_due(due_date="2100-12-31"), {"due_date": date(2100, 12, 31)}),
}


@pytest.mark.parametrize("data,expected", VALID.values(), ids=VALID.keys())
def test_valid_event(data: dict[str, Any], expected: dict[str, Any]) -> None:
    event = parse(data)
    assert event.type == data["type"]
    assert event.occurred_at.utcoffset() is not None
    for name, value in expected.items():
        assert getattr(event, name) == value


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


INVALID: dict[str, dict[str, Any]] = {
    # every event
    "naive-timestamp": body("login", occurred_at="2026-03-02T09:00:00"),
    "date-only-timestamp": body("login", occurred_at="2026-03-02"),
    "timestamp-as-json-number": body("login", occurred_at=1772442000),
    "timestamp-epoch-seconds-in-a-string": body("login", occurred_at="1772442000"),
    "timestamp-epoch-zero": body("login", occurred_at="1970-01-01T00:00:00Z"),
    "timestamp-year-1999": body("login", occurred_at="1999-12-31T23:59:59Z"),
    "timestamp-year-2101": body("login", occurred_at="2101-01-01T00:00:00Z"),
    "timestamp-year-9999": body("login", occurred_at="9999-12-31T23:59:59Z"),
    "timestamp-without-seconds": body("login", occurred_at="2026-03-02T09:00Z"),
    "timestamp-offset-without-colon": body("login", occurred_at="2026-03-02T17:00:00+0800"),
    "missing-occurred-at": without(body("login"), "occurred_at"),
    "missing-event-id": without(body("login"), "event_id"),
    "empty-event-id": body("login", event_id=""),
    "event-id-129-chars": body("login", event_id="e" * 129),
    "empty-user-id": body("login", user_id=""),
    "user-id-65-chars": body("login", user_id="u" * 65),
    "unknown-type": body("login", type="logout"),
    "missing-type": without(body("login"), "type"),
    # unknown fields, for each type
    **{f"unknown-field-{t}": body(t, channel="app") for t in MINIMAL},
    # login / device_change / bank_card_change
    "login-without-device": without(body("login"), "device_id"),
    "device-change-without-device": without(body("device_change"), "device_id"),
    "card-action-replace": body("bank_card_change", action="replace"),
    "card-without-card-id": without(body("bank_card_change"), "card_id"),
    # profile_change
    "profile-unknown-field": body("profile_change", field="email"),
    "credit-score-missing": body("profile_change", field="credit_score"),
    "credit-score-on-phone-change": body("profile_change", field="phone", credit_score=700),
    "credit-score-349": body("profile_change", field="credit_score", credit_score=349),
    "credit-score-951": body("profile_change", field="credit_score", credit_score=951),
    # transaction
    "amount-zero": body("transaction", amount=0),
    "amount-zero-string": body("transaction", amount="0.00"),
    "amount-negative": body("transaction", amount=-1),
    "amount-3-decimals-number": body("transaction", amount=10.001),
    "amount-3-decimals-string": body("transaction", amount="10.005"),
    "amount-not-a-number": body("transaction", amount="ten"),
    "amount-nan": body("transaction", amount="NaN"),
    "amount-missing": without(body("transaction"), "amount"),
    "transaction-unknown-kind": body("transaction", kind="cash_advance"),
    "transaction-unknown-product": body("transaction", product="credit_card"),
    "drawdown-on-huabei": drawdown(product="huabei"),
    "drawdown-on-balance": drawdown(product="balance"),
    "drawdown-without-loan-id": without(drawdown(), "loan_id"),
    "drawdown-without-term": without(drawdown(), "term_months"),
    "drawdown-term-0": drawdown(term_months=0),
    "drawdown-term-13": drawdown(term_months=13),
    # repayment
    "repayment-unknown-kind": body("repayment", kind="refund"),
    "repayment-without-loan": without(body("repayment"), "loan_id"),
    "repayment-without-product": without(body("repayment"), "product"),
    "repayment-on-balance": body("repayment", product="balance"),
    "repayment-amount-zero": body("repayment", amount="0"),
    "repayment-installment-0": body("repayment", installment=0),
    "installment-due-without-installment": without(installment_due(), "installment"),
    "installment-due-without-due-date": without(installment_due(), "due_date"),
    "installment-1001": installment_due(installment=1001),
    "due-date-year-1999": installment_due(due_date="1999-12-31"),
    "due-date-year-2101": installment_due(due_date="2101-01-01"),
    "installment-due-bad-date": installment_due(due_date="2026-02-30"),
}


@pytest.mark.parametrize("data", INVALID.values(), ids=INVALID.keys())
def test_invalid_event(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(data)


WRONG_JSON_TYPE: dict[str, dict[str, Any]] = {
    # Only amount is "a JSON number or string"; the others are booleans and integers.
    "success-as-string": body("login", success="true"),
    "credit-score-as-string": body("profile_change", field="credit_score", credit_score="700"),
    "term-months-as-string": drawdown(term_months="3"),
    "installment-as-string": installment_due(installment="1"),
}


@pytest.mark.parametrize("data", WRONG_JSON_TYPE.values(), ids=WRONG_JSON_TYPE.keys())
def test_booleans_and_integers_are_not_strings(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(data)


def test_events_are_frozen() -> None:
    event = parse(body("login"))
    with pytest.raises(ValidationError):
        event.device_id = "other"


def test_out_of_range_years_are_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValidationError, match="the year must be from 2000 to 2100, got 1970"):
        parse(body("login", occurred_at="1970-01-01T00:00:00Z"))
    with pytest.raises(ValidationError, match="the year must be from 2000 to 2100, got 2101"):
        parse(installment_due(due_date="2101-01-01"))


def test_not_json_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_event(b"{not json")
