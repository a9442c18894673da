"""Records of ``lineguard.overrides`` at the edge: an override change, or the dead letter
that says why not; a tombstone removes every override of its key's user."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.control import OverrideRecord
from workers.codec import TOMBSTONE_ACTOR, Placement, Rejected, decode_overrides
from workers.stream.routing import partition_for

PARTITIONS = 4
TIMESTAMP_MS = 1_772_442_000_123  # 2026-03-02T09:00:00.123Z


def body(user: str = "u1", **fields: Any) -> bytes:
    record = {
        "user_id": user,
        "overrides": [
            {
                "id": "ov-1",
                "kind": "watch",
                "actor": "alice",
                "reason": "second look",
                "created_at": "2026-03-02T09:00:00Z",
                "expires_at": "2026-03-09T09:00:00Z",
            }
        ],
        "changed_at": "2026-03-02T09:00:00Z",
        "changed_by": "alice",
        **fields,
    }
    return json.dumps(record).encode()


def placed(user: str) -> Placement:
    return Placement(partition_for(user, PARTITIONS), PARTITIONS)


def test_a_valid_record_is_an_override_change() -> None:
    decoded = decode_overrides(body(), b"u1", TIMESTAMP_MS, placed("u1"))
    assert isinstance(decoded, OverrideRecord)
    assert [o.id for o in decoded.overrides] == ["ov-1"]


def test_a_tombstone_removes_every_override_at_the_records_time() -> None:
    decoded = decode_overrides(None, b"u1", TIMESTAMP_MS, placed("u1"))
    assert isinstance(decoded, OverrideRecord)
    assert decoded.overrides == [] and decoded.user_id == "u1"
    assert decoded.changed_by == TOMBSTONE_ACTOR
    assert decoded.changed_at.isoformat() == "2026-03-02T09:00:00.123000+00:00"


def test_what_is_refused_and_why() -> None:
    other = next(f"u{n}" for n in range(2, 100) if partition_for(f"u{n}", PARTITIONS) != 0)
    cases: list[tuple[bytes | None, bytes | None, Placement | None, str]] = [
        (b"{not json", b"u1", None, "not_json"),
        (b"[1, 2]", b"u1", None, "invalid_contract"),
        (body(changed_by=""), b"u1", None, "invalid_contract"),
        (body(), b"someone-else", None, "invalid_contract"),
        (body(), None, None, "invalid_contract"),
        (None, None, None, "invalid_contract"),
        (body(other), other.encode(), Placement(0, PARTITIONS), "wrong_partition"),
    ]
    for value, key, placement, kind in cases:
        decoded = decode_overrides(value, key, TIMESTAMP_MS, placement)
        assert isinstance(decoded, Rejected), (value, key)
        assert decoded.error_kind == kind, (value, key, decoded.error)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(st.none(), st.binary(max_size=512)), key=st.one_of(st.none(), st.binary()))
def test_arbitrary_bytes_never_raise(value: bytes | None, key: bytes | None) -> None:
    decoded = decode_overrides(value, key, TIMESTAMP_MS, Placement(0, PARTITIONS))
    assert isinstance(decoded, OverrideRecord | Rejected)
