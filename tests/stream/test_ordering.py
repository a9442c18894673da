"""Alignment of a partition's input topics: events reach the core in ``occurred_at`` order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import EVENT_ADAPTER, Event
from workers.stream.ordering import TimeOrder

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WAIT = 50  # ms


def login(user_id: str, minutes: float, event_id: str = "") -> Event:
    return EVENT_ADAPTER.validate_python(
        {
            "type": "login",
            "event_id": event_id or f"{user_id}-{minutes}",
            "user_id": user_id,
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "device_id": "d1",
        }
    )


def busy(topic: str) -> int | None:
    return None  # every input has unread records


def test_events_are_released_in_time_order_once_every_busy_input_has_passed_them() -> None:
    order = TimeOrder(["logins", "payments"], WAIT)
    order.add("logins", 0, login("a", 10), 1_000)
    order.add("logins", 1, login("b", 30), 1_000)
    assert order.release(busy) == []  # payments has shown nothing: wait
    order.add("payments", 0, login("c", 20), 1_000)
    released = order.release(busy)
    assert [h.event.user_id for h in released] == ["a", "c"]  # up to min(30, 20)
    assert order.commit_offsets() == {"logins": 1, "payments": 1}


def test_an_idle_input_holds_events_back_for_the_alignment_wait_only() -> None:
    order = TimeOrder(["logins", "payments"], WAIT)
    order.skip("payments", 6)
    order.add("logins", 4, login("a", 5), 1_000)
    # payments has no unread records, but the fetch that saw it idle came too soon.
    assert order.release(lambda topic: 1_000 + WAIT - 1 if topic == "payments" else None) == []
    released = order.release(lambda topic: 1_000 + WAIT if topic == "payments" else None)
    assert [h.offset for h in released] == [4]
    assert order.commit_offsets() == {"logins": 5, "payments": 7}
    order.add("logins", 5, login("b", 6), 2_000)
    order.clear()
    assert len(order) == 0 and order.commit_offsets() == {}


def test_an_input_with_unread_records_is_never_skipped() -> None:
    order = TimeOrder(["logins", "payments"], WAIT)
    order.add("payments", 0, login("p", 1), 0)
    order.add("logins", 0, login("a", 5), 0)
    # payments has unread records (None) however long the event has waited.
    assert [h.event.user_id for h in order.release(busy)] == ["p"]
    assert order.oldest_received_ms() == 0 and order.held_count("logins") == 1


@st.composite
def interleavings(draw: Any) -> tuple[dict[str, list[Event]], list[list[tuple[str, Event]]]]:
    """Six per-topic sequences, each in its own time order, delivered interleaved in
    batches of any size."""
    topics = [f"t{n}" for n in range(6)]
    sequences: dict[str, list[Event]] = {}
    for topic in topics:
        times = sorted(draw(st.lists(st.integers(0, 500), max_size=12)))
        sequences[topic] = [login(f"u{n % 3}", t, f"{topic}-{n}") for n, t in enumerate(times)]
    cursors = dict.fromkeys(topics, 0)
    batches: list[list[tuple[str, Event]]] = []
    while any(cursors[t] < len(sequences[t]) for t in topics):
        batch = []
        for _ in range(draw(st.integers(1, 8))):
            open_topics = [t for t in topics if cursors[t] < len(sequences[t])]
            if not open_topics:
                break
            topic = draw(st.sampled_from(open_topics))
            batch.append((topic, sequences[topic][cursors[topic]]))
            cursors[topic] += 1
        batches.append(batch)
    return sequences, batches


@settings(max_examples=300, deadline=None)
@given(interleavings())
def test_any_interleaving_in_any_batch_sizes_releases_the_sorted_sequence(
    case: tuple[dict[str, list[Event]], list[list[tuple[str, Event]]]],
) -> None:
    sequences, batches = case
    order = TimeOrder(sequences, WAIT)
    delivered = dict.fromkeys(sequences, 0)
    released = []

    def idle_since(topic: str) -> int | None:
        # A topic is idle once everything it holds has been delivered, as seen by a fetch
        # long after any event was received.
        return 10 * WAIT * len(batches) if delivered[topic] == len(sequences[topic]) else None

    for now, batch in enumerate(batches):
        for topic, event in batch:
            order.add(topic, delivered[topic], event, now)
            delivered[topic] += 1
        released += order.release(idle_since)
    everything = [event for sequence in sequences.values() for event in sequence]
    assert len(released) == len(everything) and len(order) == 0
    times = [h.event.occurred_at for h in released]
    assert times == sorted(times)
    assert sorted(h.event.event_id for h in released) == sorted(e.event_id for e in everything)
    assert order.commit_offsets() == {t: len(s) for t, s in sequences.items() if s}


def test_an_override_change_takes_its_turn_by_its_time_among_the_events() -> None:
    from schemas.control import OverrideRecord

    change = OverrideRecord.model_validate(
        {
            "user_id": "a",
            "overrides": [],
            "changed_at": (T0 + timedelta(minutes=15)).isoformat(),
            "changed_by": "ana",
        }
    )
    order = TimeOrder(["logins", "overrides"], WAIT)
    order.add("logins", 0, login("a", 10), 1_000)
    order.add("logins", 1, login("a", 20), 1_000)
    order.add("overrides", 0, change, 1_000)
    released = order.release(lambda topic: 2_000)
    assert [type(h.event).__name__ for h in released] == ["Login", "OverrideRecord", "Login"]
    assert order.commit_offsets() == {"logins": 2, "overrides": 1}
