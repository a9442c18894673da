"""Event time as integer microseconds: exact for every offset the contracts accept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st

from workers.core import timeutil
from workers.core.timeutil import from_us, to_us
from workers.decoding import Rejected, decode_event

_NAIVE_EPOCH = datetime(1970, 1, 1)


def _oracle(moment: datetime) -> int:
    """Microseconds since the epoch by another route: to UTC, drop the zone, count."""
    return (moment.astimezone(UTC).replace(tzinfo=None) - _NAIVE_EPOCH) // timedelta(microseconds=1)


def _decoded(text: str) -> datetime:
    event = decode_event(
        orjson.dumps(
            {
                "type": "login",
                "event_id": "e-1",
                "user_id": "u-1",
                "occurred_at": text,
                "device_id": "d-1",
            }
        )
    )
    assert not isinstance(event, Rejected), event
    return event.occurred_at


moments = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2100, 12, 30))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


@given(moments, offsets, st.sampled_from(["Z", "+00:00", "offset"]))
def test_a_decoded_timestamp_counts_the_same_microseconds_whatever_its_offset(
    naive: datetime, offset: timedelta, written: str
) -> None:
    local = naive.replace(tzinfo=timezone(offset if written == "offset" else timedelta(0)))
    text = local.isoformat()
    if written == "Z":
        text = text.replace("+00:00", "Z")
    moment = _decoded(text)
    assert to_us(moment) == _oracle(local)
    assert to_us(from_us(to_us(moment))) == to_us(moment)


@given(moments, offsets)
def test_datetimes_made_outside_the_decoder_count_the_same(
    naive: datetime, offset: timedelta
) -> None:
    for zone in (UTC, timezone(offset)):
        moment = naive.replace(tzinfo=zone)
        assert to_us(moment) == _oracle(moment)


def test_timestamps_at_offset_zero_share_the_zone_that_takes_the_short_path() -> None:
    # Not a matter of correctness (the other path gives the same count) but of cost: if the
    # decoder stopped sharing one zone object, every event would pay two utcoffset calls.
    assert _decoded("2026-03-01T10:11:12Z").tzinfo is timeutil._ZULU
    assert _decoded("2026-03-01T10:11:12.5+00:00").tzinfo is timeutil._ZULU
    assert _decoded("2026-03-01T10:11:12+08:00").tzinfo is not timeutil._ZULU
