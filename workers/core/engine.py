"""Many users' states plus a deadline index: the core as the worker, replay and benchmarks use it.

``apply`` moves the clock to the event's time, fires every deadline due by then (in time
order, across users), then applies the event; ``advance`` fires deadlines up to a time.
Finding due deadlines costs in proportion to the deadlines due, not to the number of users:
a heap of ``(deadline, user_id)`` with stale entries skipped lazily, checked against a map
of each user's pending deadline (so a stale entry never needs the user's state).

Memory stays bounded by the number of recently used users, not the number of users: at most
``live_users`` states are live objects, the rest are held as their serialised bytes (see
``users``). The common case, an event for a user seen recently, pays no deserialisation; a
deadline firing for a cold user deserialises it, fires, and stores it serialised again,
which is also the changelog record ``take_dirty`` hands out.
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
from workers.core.state import LINE_CLOSED, UserState, deserialize
from workers.core.timeutil import from_us, iso, to_us
from workers.core.users import Users

LIVE_USERS = 50_000
"""Default bound on the states an engine keeps as live objects (several KB each)."""


class Step(NamedTuple):
    """What one event did: its outputs, and whether it was a duplicate (nothing changed)."""

    outputs: list[Output]
    duplicate: bool = False


class Engine:
    """The decision core over a set of users (one partition, or a whole replay)."""

    def __init__(self, policy: Policy, *, live_users: int = LIVE_USERS) -> None:
        self.policy = policy
        self._rules = compile_policy(policy)
        self._users = Users(live_users)
        self._heap: list[tuple[int, str]] = []
        self._deadlines: dict[str, int] = {}  # user id -> pending deadline, for users with one
        self._clock: int | None = None
        self._dirty: set[str] = set()

    @property
    def clock(self) -> datetime | None:
        return None if self._clock is None else from_us(self._clock)

    @property
    def user_count(self) -> int:
        return len(self._users)

    @property
    def live_user_count(self) -> int:
        """Users whose state is held as live objects (at most ``live_users``)."""
        return self._users.live_count

    @property
    def deadline_count(self) -> int:
        """Users with a pending deadline (kept as they change, not a scan)."""
        return len(self._deadlines)

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
        state = self._users.use(user_id)
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
            self._set_deadline(user_id, after)
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
        deadlines, users = self._deadlines, self._users
        # ``self._heap`` each time round: ``_set_deadline`` may rebuild it mid-loop.
        while self._heap and self._heap[0][0] <= until:
            deadline, user_id = heapq.heappop(self._heap)
            if deadlines.get(user_id) != deadline:
                continue  # stale entry: the user's deadline moved since it was pushed
            state, cold = users.borrow(user_id)
            outputs.extend(fire_deadline(state, self._rules, user_id))
            if cold:
                users.put_back(user_id, state)
            self._dirty.add(user_id)
            self._set_deadline(user_id, state.next_deadline)
        return outputs

    def _set_deadline(self, user_id: str, deadline: int | None) -> None:
        if deadline is None:
            self._deadlines.pop(user_id, None)
            return
        self._deadlines[user_id] = deadline
        heapq.heappush(self._heap, (deadline, user_id))
        # An entry costs ~100 B, a tenth of a cold user: keep stale ones under half the heap.
        # A rebuild is O(pending) and follows at least as many pushes: O(1) a push.
        if len(self._heap) > 2 * len(self._deadlines) + 1024:
            self._heap = [(at, uid) for uid, at in self._deadlines.items()]
            heapq.heapify(self._heap)

    def take_dirty(self) -> dict[str, bytes]:
        """Serialised states of the users changed since the last call (changelog records)."""
        blob = self._users.blob
        changed = {user_id: blob(user_id) for user_id in self._dirty}
        self._dirty.clear()
        return changed

    def restore(self, user_id: str, blob: bytes) -> None:
        """Load a user's state from a changelog record; fires nothing."""
        state = deserialize(blob)  # read now, so a bad record fails here and not on first use
        self._users.restore(user_id, state, blob)
        self._set_deadline(user_id, state.next_deadline)

    def state_of(self, user_id: str) -> UserState | None:
        """The user's state, made live (and the most recently used) if it was cold."""
        return self._users.find(user_id)

    def status(self, user_id: str) -> dict[str, Any] | None:
        """The status API's view of one user at the engine's clock."""
        state = self._users.peek(user_id)
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
