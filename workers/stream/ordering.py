"""Time order across one partition's input topics (alignment).

Each event type has its own topic, so one partition number is fed by six topic partitions
that the consumer fetches independently. The events of a partition are released to the
core in ``occurred_at`` order, as Kafka Streams synchronises the inputs of a task: an event
at time ``t`` is released once every input topic either

- has shown an event at or after ``t`` (each topic is itself in time order, so nothing
  earlier can follow), or
- is *idle*: it has no unread records, as seen by a fetch answered at least ``align_wait``
  after the event was received. A producer writes all six topics in time order, but its
  records reach the broker a little apart (batching, linger, retries); ``align_wait`` covers
  that skew, so a record of an idle topic dated before ``t`` has arrived, and been seen by a
  fetch, before ``t`` is released.

So when each topic is in order and the cross-topic arrival skew stays under ``align_wait``,
events are released exactly in time order; an event waits at most ``align_wait`` (plus one
fetch) for a quiet topic, and not at all while every topic is busy. Beyond those limits the
order can differ; per user the core's grace (deadlines wait for earlier events) still holds.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.control import OverrideRecord
from schemas.events import Event
from workers.core.timeutil import to_us

IdleSince = Callable[[str], int | None]
"""For a topic: ``None`` when it has unread records (or its position is unknown), else the
wall time in ms of the latest fetch that found it with none."""


@dataclass(slots=True, order=True)
class Held:
    """One decoded event waiting for its turn (ordered by time, then arrival)."""

    at: int
    sequence: int
    topic: str = field(compare=False)
    offset: int = field(compare=False)
    event: Event | OverrideRecord = field(compare=False)
    """An event, or an override change (dated ``changed_at``)."""
    received_ms: int = field(compare=False)
    """Wall time (ms) when the consumer handed the record over."""
    record: Any = field(default=None, compare=False)
    """The consumer record it came from (for a dead letter if the core fails on it)."""
    released: bool = field(default=False, compare=False)


class TimeOrder:
    """The held events of one partition number, and what may be committed."""

    def __init__(self, topics: Iterable[str], align_wait_ms: int) -> None:
        self.topics = tuple(topics)
        self.align_wait_ms = align_wait_ms
        self._heap: list[Held] = []
        self._by_topic: dict[str, deque[Held]] = {topic: deque() for topic in self.topics}
        self._seen_up_to: dict[str, int] = {}
        self._next_offset: dict[str, int] = {}
        self._held_per_topic: Counter[str] = Counter()
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(
        self,
        topic: str,
        offset: int,
        event: Event | OverrideRecord,
        received_ms: int,
        record: Any = None,
    ) -> None:
        """Hold a decoded event (or override change) until ``release`` says its time has come."""
        self._sequence += 1
        at = to_us(event.changed_at if isinstance(event, OverrideRecord) else event.occurred_at)
        held = Held(at, self._sequence, topic, offset, event, received_ms, record)
        heapq.heappush(self._heap, held)
        self._by_topic[topic].append(held)
        self._held_per_topic[topic] += 1
        if at > self._seen_up_to.get(topic, at - 1):
            self._seen_up_to[topic] = at
        self._next_offset[topic] = offset + 1

    def skip(self, topic: str, offset: int) -> None:
        """A record that holds no event (a dead letter): only its offset moves on."""
        self._next_offset[topic] = offset + 1

    def release(self, idle_since: IdleSince) -> list[Held]:
        """The held events that may be applied now, in ``occurred_at`` order."""
        if not self._heap:
            return []
        wait = self.align_wait_ms
        fronts = [(self._seen_up_to.get(topic), idle_since(topic)) for topic in self.topics]
        heap, ready = self._heap, []
        while heap:
            held = heap[0]
            if not all(
                (seen is not None and seen >= held.at)
                or (idle is not None and idle >= held.received_ms + wait)
                for seen, idle in fronts
            ):
                break
            heapq.heappop(heap)
            held.released = True
            self._held_per_topic[held.topic] -= 1
            ready.append(held)
        return ready

    def oldest_received_ms(self) -> int | None:
        """When the longest-held event was received (None: nothing held)."""
        return min((h.received_ms for h in self._heap), default=None)

    def held_count(self, topic: str) -> int:
        return self._held_per_topic[topic]

    def commit_offsets(self) -> dict[str, int]:
        """Per topic, the offset to resume from: the oldest held record, else the next one."""
        offsets = dict(self._next_offset)
        for topic, queue in self._by_topic.items():
            while queue and queue[0].released:
                queue.popleft()
            if queue:
                offsets[topic] = queue[0].offset
        return offsets

    def next_offset(self, topic: str) -> int | None:
        """The offset after the last record seen from ``topic`` (None: none seen)."""
        return self._next_offset.get(topic)

    def clear(self) -> None:
        """Forget held events and positions (they are re-read from the committed offsets)."""
        self._heap.clear()
        for queue in self._by_topic.values():
            queue.clear()
        self._held_per_topic.clear()
        self._seen_up_to.clear()
        self._next_offset.clear()
