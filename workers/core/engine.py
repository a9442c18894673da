"""Many users' states plus a deadline index: the core as the worker, replay and benchmarks use it.

``apply`` moves the clock to the event's time, fires every deadline due by then (in time
order, across users), then applies the event; ``advance`` fires deadlines up to a time.
Finding due deadlines costs in proportion to the deadlines due, not to the number of users:
a heap of ``(deadline, user_id)`` with stale entries skipped lazily.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any, NamedTuple

from schemas.events import Event
from workers.core.compiled import compile_policy
from workers.core.decide import decide
from workers.core.lifecycle import STANDING, Output, fire_deadline, unmet_restore_conditions
from workers.core.policy import Policy
from workers.core.state import LINE_CLOSED, UserState, deserialize, serialize
from workers.core.timeutil import from_us, iso, to_us


class Step(NamedTuple):
    """What one event did: its outputs, and whether it was a duplicate (nothing changed)."""

    outputs: list[Output]
    duplicate: bool = False


class Engine:
    """The decision core over a set of users (one partition, or a whole replay)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._rules = compile_policy(policy)
        self._users: dict[str, UserState] = {}
        self._heap: list[tuple[int, str]] = []
        self._clock: int | None = None
        self._dirty: set[str] = set()
        self._with_deadline = 0

    @property
    def clock(self) -> datetime | None:
        return None if self._clock is None else from_us(self._clock)

    @property
    def user_count(self) -> int:
        return len(self._users)

    @property
    def deadline_count(self) -> int:
        """Users with a pending deadline (kept as a running count, not a scan)."""
        return self._with_deadline

    def apply(self, event: Event) -> Step:
        at = to_us(event.occurred_at)
        clock = self._clock
        if clock is None or at > clock:
            self._clock = clock = at
            heap = self._heap
            outputs = self._fire_due(at) if heap and heap[0][0] <= at else []
        else:
            outputs = []
        user_id = event.user_id
        state = self._users.get(user_id)
        if state is None:
            state = self._users[user_id] = UserState()
        before = state.next_deadline
        _, produced, duplicate = decide(state, event, self._rules, at)
        if duplicate:
            return Step(outputs, True)
        self._dirty.add(user_id)
        outputs.extend(produced)
        # A bill whose milestones already passed (or an out-of-order event) can leave
        # this user with deadlines at or before the clock: fire them now.
        while state.next_deadline is not None and state.next_deadline <= clock:
            outputs.extend(fire_deadline(state, self._rules, user_id))
        after = state.next_deadline
        if after != before:
            self._with_deadline += (after is not None) - (before is not None)
            if after is not None:
                self._push(after, user_id)
        return Step(outputs)

    def advance(self, now: datetime) -> list[Output]:
        """Move the clock to ``now`` (never back) and fire every deadline at or before it."""
        at = to_us(now)
        if self._clock is not None and at <= self._clock:
            return self._fire_due(self._clock)
        return self._advance_to(at)

    def _advance_to(self, at: int) -> list[Output]:
        self._clock = at
        return self._fire_due(at)

    def _fire_due(self, until: int) -> list[Output]:
        outputs: list[Output] = []
        heap = self._heap
        while heap and heap[0][0] <= until:
            deadline, user_id = heapq.heappop(heap)
            state = self._users.get(user_id)
            if state is None or state.next_deadline != deadline:
                continue  # stale entry: the user's deadline moved since it was pushed
            outputs.extend(fire_deadline(state, self._rules, user_id))
            self._dirty.add(user_id)
            if state.next_deadline is not None:
                self._push(state.next_deadline, user_id)
            else:
                self._with_deadline -= 1
        return outputs

    def _push(self, deadline: int, user_id: str) -> None:
        heapq.heappush(self._heap, (deadline, user_id))
        if len(self._heap) > 4 * len(self._users) + 1024:
            self._heap = [
                (state.next_deadline, uid)
                for uid, state in self._users.items()
                if state.next_deadline is not None
            ]
            heapq.heapify(self._heap)

    def take_dirty(self) -> dict[str, bytes]:
        """Serialised states of the users changed since the last call (changelog records)."""
        changed = {user_id: serialize(self._users[user_id]) for user_id in self._dirty}
        self._dirty.clear()
        return changed

    def restore(self, user_id: str, blob: bytes) -> None:
        """Load a user's state from a changelog record; fires nothing."""
        state = deserialize(blob)
        previous = self._users.get(user_id)
        if previous is not None and previous.next_deadline is not None:
            self._with_deadline -= 1
        self._users[user_id] = state
        if state.next_deadline is not None:
            self._with_deadline += 1
            self._push(state.next_deadline, user_id)

    def state_of(self, user_id: str) -> UserState | None:
        return self._users.get(user_id)

    def status(self, user_id: str) -> dict[str, Any] | None:
        """The status API's view of one user at the engine's clock."""
        state = self._users.get(user_id)
        if state is None:
            return None
        now = self._clock if self._clock is not None else (state.last_at or 0)
        active = []
        for code, truth_fn in STANDING.items():
            truth = truth_fn(state, self._rules, now)
            if truth is not None:
                active.append({"signal": code, "evidence": truth.evidence})
        closed = state.line == LINE_CLOSED
        return {
            "user_id": user_id,
            "line_state": state.line,
            "closures": state.cycle,
            "as_of": iso(now),
            "active_signals": active,
            "last_closure_reasons": state.close_reasons,
            "closed_at": iso(state.closed_at) if state.closed_at is not None else None,
            "next_review_at": (
                iso(state.anchor + state.cooling) if closed and state.anchor is not None else None
            ),
            "unmet_restore_conditions": (
                unmet_restore_conditions(state, self._rules, now) if closed else []
            ),
            "recent_flags": [
                {"signal": f["signal"], "raised_at": iso(f["raised_at"])}
                for f in state.recent_flags
            ],
            "next_deadline_at": iso(state.next_deadline) if state.next_deadline else None,
            "policy_version": self.policy.version,
        }
