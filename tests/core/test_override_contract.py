"""The override contract: what an override record accepts and what it refuses, and its
JSON Schema agreeing with the model on both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from schemas.control import MAX_OVERRIDES, Override, OverrideRecord

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas/json/override-record.schema.json").read_text()
)


def override(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ov-1",
        "kind": "suppress",
        "rule": "DEVICE_SWITCHING",
        "actor": "alice",
        "reason": "travelling, appeal 4411",
        "created_at": "2026-03-02T09:00:00Z",
        "expires_at": "2026-03-20T00:00:00Z",
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def record(*overrides: dict[str, Any], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "user_id": "u1",
        "overrides": list(overrides),
        "changed_at": "2026-03-02T09:00:00Z",
        "changed_by": "alice",
    }
    base.update(fields)
    return base


ACCEPTED = {
    "suppress one rule": record(override()),
    "suppress every rule": record(override(rule=None)),
    "force_close without expiry": record(
        override(kind="force_close", rule=None, expires_at=None, note="fraud ring, case 77")
    ),
    "force_close with expiry": record(
        override(kind="force_close", rule=None, note="case 77", expires_at="2026-04-01T00:00:00Z")
    ),
    "watch": record(override(kind="watch", rule=None)),
    "no overrides left": record(),
    "several": record(override(), override(id="ov-2", kind="watch", rule=None)),
}

REFUSED = {
    "unknown field": (record(override(colour="red")), "extra"),
    "unknown kind": (record(override(kind="snooze")), "kind"),
    "unknown rule": (record(override(rule="NOT_A_RULE")), "rule"),
    "rule on a watch": (record(override(kind="watch")), "only for suppress"),
    "force_close without a note": (
        record(override(kind="force_close", rule=None, expires_at=None)),
        "needs a note",
    ),
    "suppress without expiry": (record(override(expires_at=None)), "needs expires_at"),
    "watch without expiry": (record(override(kind="watch", rule=None, expires_at=None)), "needs"),
    "expiry before creation": (
        record(override(expires_at="2026-03-01T00:00:00Z")),
        "after created_at",
    ),
    "created after the change": (
        record(override(created_at="2026-03-03T00:00:00Z")),
        "created after changed_at",
    ),
    "repeated id": (record(override(), override()), "distinct"),
    "no actor": (record(override(actor="")), "actor"),
    "no reason": (record(override(reason="")), "reason"),
    "naive time": (record(override(created_at="2026-03-02T09:00:00")), "RFC 3339"),
    "id with a space": (record(override(id="ov 1")), "id"),
    "too many": (
        record(*(override(id=f"ov-{n}") for n in range(MAX_OVERRIDES + 1))),
        "at most",
    ),
    "no user": (record(override(), user_id=""), "user_id"),
    "no changed_by": (record(override(), changed_by=""), "changed_by"),
    "unknown schema version": (record(override(), schema_version=2), "schema_version"),
}


@pytest.mark.parametrize("body", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted(body: dict[str, Any]) -> None:
    parsed = OverrideRecord.model_validate_json(json.dumps(body))
    assert OverrideRecord.model_validate_json(parsed.model_dump_json()) == parsed
    Draft202012Validator(SCHEMA).validate(json.loads(parsed.model_dump_json()))


@pytest.mark.parametrize(("body", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OverrideRecord.model_validate_json(json.dumps(body))


def test_manual_review_cannot_be_suppressed() -> None:
    with pytest.raises(ValidationError, match="MANUAL_REVIEW"):
        Override.model_validate(override(rule="MANUAL_REVIEW"))
