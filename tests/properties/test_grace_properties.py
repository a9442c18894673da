"""Grace as an invariant: arrival order within grace does not change what deadlines decide.

Moving one of a user's events later in the input, but no further than where the clock (the
largest ``occurred_at`` seen) would pass its ``occurred_at + grace``, changes no
time-triggered flag or decision (those without a trigger event).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import Event
from schemas.outputs import Decision, Flag
from tests.properties.test_lifecycle_properties import POLICY, histories, run

GRACE = timedelta(seconds=POLICY.time.grace_seconds)


def time_triggered(outputs: list[Flag | Decision]) -> list[str]:
    return sorted(o.model_dump_json() for o in outputs if o.trigger_event_id is None)


@st.composite
def moved(draw: Any) -> tuple[list[Event], list[Event]]:
    """A history in time order, and the same with one event moved later within its grace."""
    # Dense bursts (many events within one grace) between long silences (deadlines).
    gaps = (0, 20, 60, 300, 600, 86400, 20 * 86400, 45 * 86400)
    events = sorted(draw(histories(max_events=80, gaps=gaps)), key=lambda e: e.occurred_at)
    index = draw(st.integers(0, len(events) - 1))
    event = events[index]
    rest = events[:index] + events[index + 1 :]
    # Positions after ``index`` where the clock has not yet passed occurred_at + grace.
    limit = index
    while limit < len(rest) and rest[limit].occurred_at <= event.occurred_at + GRACE:
        limit += 1
    target = draw(st.integers(index, limit))
    return events, [*rest[:target], event, *rest[target:]]


@settings(
    # LINEGUARD_PROPERTY_EXAMPLES=5000 for a longer search than CI's.
    max_examples=int(os.environ.get("LINEGUARD_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(moved())
def test_moving_an_event_later_within_grace_changes_no_time_triggered_output(
    case: tuple[list[Event], list[Event]],
) -> None:
    in_order, reordered = case
    assert time_triggered(run(reordered)) == time_triggered(run(in_order))
