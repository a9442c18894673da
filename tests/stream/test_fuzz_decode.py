"""The decoder under hostile input (hypothesis): arbitrary bytes, arbitrary JSON and mutated
valid events never raise out of ``decode``; each one decodes to an event that honours the
key, topic and partition, or gives a ``Rejected`` whose dead letter can be built.

``LINEGUARD_FUZZ_EXAMPLES`` sets the examples per test (default 200); bench/fuzz_decode.py
runs far more.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import EVENT_TYPES, EventBase
from schemas.outputs import ErrorKind
from schemas.samples import SAMPLE_BODIES
from workers.codec import Placement, Rejected, dead_letter_record, decode, read_dead_letter
from workers.stream.routing import partition_for

EXAMPLES = int(os.environ.get("LINEGUARD_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ERROR_KINDS = set(get_args(ErrorKind))
AT = "2026-03-02T08:00:00Z"

VALID_BODIES = [
    {"event_id": f"e{n}", "user_id": f"user-{n}", "occurred_at": AT, **body}
    for n, body in enumerate(SAMPLE_BODIES)
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", "2026-03-02T08:00:00Z", "1970-01-01T00:00:00Z", "9" * 40, "login"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
placements = st.integers(1, 12).flatmap(
    lambda count: st.builds(Placement, st.integers(0, count - 1), st.just(count))
)
expected_types = st.none() | st.sampled_from(EVENT_TYPES)


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A valid event with some fields dropped, replaced or added, then maybe a few bytes
    flipped, with its right key most of the time."""
    body = dict(draw(st.sampled_from(VALID_BODIES)))
    user_id = body["user_id"]
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from([*body, "extra", "schema_version", "type"]))
        action = draw(st.sampled_from(["drop", "replace", "replace"]))
        if action == "drop":
            body.pop(name, None)
        else:
            body[name] = draw(json_values)
    raw = bytearray(json.dumps(body).encode())
    for _ in range(draw(st.integers(0, 3))):
        if not raw:
            break
        position = draw(st.integers(0, len(raw) - 1))
        if draw(st.booleans()):
            raw[position] = draw(st.integers(0, 255))
        else:
            del raw[position]
    key = draw(
        st.sampled_from([user_id.encode(), user_id.encode(), None, b""]) | st.binary(max_size=70)
    )
    return bytes(raw), key


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def check(
    value: bytes | None, key: bytes | None, expected: str | None, placement: Placement
) -> None:
    result = decode(value, key, expected, placement)
    if isinstance(result, Rejected):
        assert result.error_kind in ERROR_KINDS
        assert result.error.strip()
        record = Record("lineguard.login", placement.partition, 0, key, value)
        letter = dead_letter_record(result, record, 1024)
        assert read_dead_letter(letter.headers).error_kind == result.error_kind
        return
    assert isinstance(result, EventBase)
    assert key == result.user_id.encode()
    assert expected in (None, result.type)
    assert partition_for(result.user_id, placement.partitions) == placement.partition


@FUZZ
@given(
    st.none() | st.binary(max_size=2048),
    st.none() | st.binary(max_size=80),
    expected_types,
    placements,
)
def test_arbitrary_bytes_never_raise(
    value: bytes | None, key: bytes | None, expected: str | None, placement: Placement
) -> None:
    check(value, key, expected, placement)


@FUZZ
@given(json_values, st.binary(max_size=20), expected_types, placements)
def test_arbitrary_json_never_raises(
    document: Any, key: bytes, expected: str | None, placement: Placement
) -> None:
    check(json.dumps(document).encode(), key, expected, placement)


@FUZZ
@given(mutated_events(), expected_types, placements)
def test_mutated_valid_events_never_raise(
    case: tuple[bytes, bytes | None], expected: str | None, placement: Placement
) -> None:
    value, key = case
    check(value, key, expected, placement)


def test_the_seeds_of_the_mutations_are_valid_events() -> None:
    for body in VALID_BODIES:
        user_id = body["user_id"]
        placement = Placement(partition_for(user_id, 6), 6)
        result = decode(json.dumps(body).encode(), user_id.encode(), body["type"], placement)
        assert not isinstance(result, Rejected), result
