"""Time order across one partition's input topics.

Each event type has its own topic, so one partition number is fed by six topic
partitions that the consumer fetches independently. The engine's clock is the largest
``occurred_at`` it has seen, and a clock that runs ahead fires other users' deadlines
early; so the events of a partition are released in ``occurred_at`` order, the way
Kafka Streams synchronises the inputs of a task: an event is released once every input
that still has unread records has been read at least up to its time. An input whose
position has reached its high watermark does not hold the others back.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from schemas.events import Event

_ORDER = attrgetter("occurred_at", "sequence")


@dataclass(slots=True)
class Held:
    """One decoded event waiting for its turn."""

    occurred_at: datetime
    sequence: int
    topic: str
    offset: int
    event: Event
    received: float
    record: Any = None
    """The consumer record it came from (for a dead letter if the core fails on it)."""
    released: bool = False


class TimeOrder:
    """The held events of one partition number, and what may be committed."""

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = tuple(topics)
        self._held: list[Held] = []
        self._by_topic: dict[str, deque[Held]] = {topic: deque() for topic in self.topics}
        self._seen_up_to: dict[str, datetime] = {}
        self._next_offset: dict[str, int] = {}
        self._held_per_topic: Counter[str] = Counter()
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._held)

    def add(
        self, topic: str, offset: int, event: Event, received: float, record: Any = None
    ) -> None:
        """Hold a decoded event until ``release`` says its time has come."""
        self._sequence += 1
        held = Held(event.occurred_at, self._sequence, topic, offset, event, received, record)
        self._held.append(held)
        self._by_topic[topic].append(held)
        self._held_per_topic[topic] += 1
        seen = self._seen_up_to.get(topic)
        if seen is None or event.occurred_at > seen:
            self._seen_up_to[topic] = event.occurred_at
        self._next_offset[topic] = offset + 1

    def skip(self, topic: str, offset: int) -> None:
        """A record that holds no event (a dead letter): only its offset moves on."""
        self._next_offset[topic] = offset + 1

    def release(self, caught_up: Callable[[str], bool]) -> list[Held]:
        """The held events that may be applied now, in ``occurred_at`` order.

        ``caught_up(topic)`` tells whether the topic's partition has no unread records.
        """
        if not self._held:
            return []
        horizon: datetime | None = None
        for topic in self.topics:
            if caught_up(topic):
                continue
            seen = self._seen_up_to.get(topic)
            if seen is None:
                return []  # an input with unread records that has shown nothing yet
            if horizon is None or seen < horizon:
                horizon = seen
        if horizon is None:
            ready, self._held = self._held, []
            self._held_per_topic.clear()
        else:
            ready = [held for held in self._held if held.occurred_at <= horizon]
            if not ready:
                return []
            self._held = [held for held in self._held if held.occurred_at > horizon]
            for held in ready:
                self._held_per_topic[held.topic] -= 1
        for held in ready:
            held.released = True
        ready.sort(key=_ORDER)
        return ready

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
        """Forget held events and positions (on revocation: they are re-read from commits)."""
        self._held.clear()
        for queue in self._by_topic.values():
            queue.clear()
        self._held_per_topic.clear()
        self._seen_up_to.clear()
        self._next_offset.clear()
