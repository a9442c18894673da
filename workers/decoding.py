"""Bytes to events at the edge: a valid event, or the ``Rejected`` that says why not.

The one decoder of input: ``lineguard replay`` reads lines with it, and ``workers.codec``
builds on it for consumed records (key, topic and partition checks, dead letters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.control import OverrideRecord
from schemas.events import EVENT_ADAPTER, EVENT_TYPES, Event
from schemas.outputs import ErrorKind


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a line or a record is not a usable event."""

    error_kind: ErrorKind
    error: str
    expected_partition: int | None = None


def describe(exc: ValidationError, limit: int = 5, skip: int = 1) -> str:
    """A short, readable summary of a validation error: ``field: message; ...``
    (``skip``: leading parts of each location left out, the event type's tag by default)."""
    parts = []
    for error in exc.errors()[:limit]:
        location = ".".join(str(part) for part in error["loc"][skip:] or error["loc"])
        parts.append(f"{location}: {error['msg']}" if location else str(error["msg"]))
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def decode_event(raw: bytes | str) -> Event | Rejected:
    """Validate one JSON event; never raises for bad input."""
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return _classify(raw, exc)


def _json_object(raw: bytes | str, what: str) -> dict[str, Any] | Rejected:
    """``raw`` parsed, when it is a JSON object; else why not (``what`` it should be)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as json_exc:
        return Rejected("not_json", f"not valid JSON: {json_exc}")
    if not isinstance(data, dict):
        return Rejected(
            "invalid_contract", f"{what} must be a JSON object, got {type(data).__name__}"
        )
    return data


def _classify(raw: bytes | str, exc: ValidationError) -> Rejected:
    data = _json_object(raw, "an event")
    if isinstance(data, Rejected):
        return data
    event_type = data.get("type")
    if event_type not in EVENT_TYPES:
        known = ", ".join(EVENT_TYPES)
        return Rejected(
            "unknown_type", f"unknown event type {event_type!r}; expected one of {known}"
        )
    return Rejected("invalid_contract", f"{event_type}: {describe(exc)}")


def decode_override(raw: bytes | str) -> OverrideRecord | Rejected:
    """Validate one override record (``lineguard.overrides``); never raises for bad input."""
    try:
        return OverrideRecord.model_validate_json(raw)
    except ValidationError as exc:
        data = _json_object(raw, "an override record")
        if isinstance(data, Rejected):
            return data
        return Rejected("invalid_contract", f"override record: {describe(exc, skip=0)}")
