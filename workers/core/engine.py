"""Many users' states plus a deadline index: the core as the worker, replay and benchmarks use it.

``apply`` moves the clock to the event's time, fires every deadline due by then (in time
order, across users), then applies the event; ``advance`` fires deadlines up to a time.

**Grace.** A deadline fires when the clock reaches ``deadline + grace`` (the policy's
``[time] grace``); its outputs still carry the deadline. Per user, events and deadlines take
effect in time order: an event dated before the user's next unfired deadline is applied at
once; one dated at or after it waits in the user's state and is applied right after the
deadline fires (deadline first at equal instants). An event that moves or removes the
deadline releases what waited on it. So a deadline is judged on exactly the user's events
dated before it, whatever order they arrived in within grace. An event that arrives after
the clock passed ``occurred_at + grace`` is *late*: applied, counted, and corrected for
(``corrections``).

Finding due deadlines costs in proportion to the deadlines due, not to the number of users:
a heap of ``(deadline, user_id)`` with stale entries skipped lazily, checked against a map
of each user's pending deadline (so a stale entry never needs the user's state).

Memory stays bounded by the number of recently used users, not the number of users: at most
``live_users`` states are live objects, the rest are held as their serialised bytes (see
``users``). The common case, an event for a user seen recently, pays no deserialisation; a
deadline firing for a cold user deserialises it, fires, and stores it serialised again,
which is also the changelog record ``take_dirty`` hands out. With a ``loader`` (a store that
holds every saved state), even those bytes can go once saved (``drop_cold``): a user's state
is read back on first use, and a restore needs only each user's pending deadline and waiting
count (``pending``, ``restore_pending``), not the states.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import Counter
from datetime import datetime
from typing import Any, NamedTuple

from schemas.control import OverrideRecord
from schemas.events import Event, event_to_json, parse_event
from schemas.outputs import Output, PolicyRole
from workers.core.compiled import compile_policy
from workers.core.corrections import correct, needs_correction
from workers.core.decide import decide
from workers.core.lifecycle import fire_deadline, unmet_restore_conditions
from workers.core.messages import close_message, unmet_message
from workers.core.overrides import apply_change
from workers.core.policy import Policy
from workers.core.rules import RULES, STANDING
from workers.core.rules.manual_review import holds_at
from workers.core.state import LINE_CLOSED, MAX_WAITING, UserState, deserialize
from workers.core.timeutil import from_us, iso, to_us
from workers.core.users import Loader, Users

OVERRIDE_CHANGE = ""
"""The id of a waiting override change in a user's ``waiting`` (no event id is empty)."""

LIVE_USERS = 50_000
"""Default bound on the states an engine keeps as live objects (several KB each)."""


class Step(NamedTuple):
    """What one event did: its outputs; whether it was a duplicate (nothing changed), late
    (it came after the clock passed its time plus grace) or is waiting for a deadline."""

    outputs: list[Output]
    duplicate: bool = False
    late: bool = False
    waiting: bool = False


_new_step = tuple.__new__
"""``Step(...)`` without the Python-level ``__new__`` a NamedTuple runs: a third of the cost,
and ``apply`` returns one for every event."""


class Engine:
    """The decision core over a set of users (one partition, or a whole replay)."""

    def __init__(
        self,
        policy: Policy,
        *,
        live_users: int = LIVE_USERS,
        loader: Loader | None = None,
        role: PolicyRole = "live",
    ) -> None:
        self.policy = policy
        self.role: PolicyRole = role
        self._rules = compile_policy(policy, role)
        self._grace = self._rules.grace
        self._users = Users(live_users, loader)
        self._heap: list[tuple[int, str]] = []
        self._deadlines: dict[str, int] = {}  # user id -> pending deadline, for users with one
        self._clock: int | None = None
        self._dirty: set[str] = set()
        self._waiting: dict[str, int] = {}  # user id -> events waiting, for users with some
        self._carried: list[Output] = []  # fired before a failed ``apply``: handed out next
        self.cap_drops: Counter[str] = Counter()
        """What the state's size caps forced out, by what (since the last ``take_counts``)."""
        self.late_events: Counter[str] = Counter()
        """Late events applied, by event type (since the last ``take_counts``)."""

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

    @property
    def waiting_count(self) -> int:
        """Events held in users' states until a deadline fires (kept as they change)."""
        return sum(self._waiting.values())

    def take_counts(self) -> tuple[Counter[str], Counter[str]]:
        """(cap drops by what, late events by type) since the last call."""
        counts = (self.cap_drops, self.late_events)
        self.cap_drops, self.late_events = Counter(), Counter()
        return counts

    def set_policy(self, policy: Policy) -> None:
        """Decide with ``policy`` from now on. Users' facts and lifecycles stay; deadlines
        already scheduled fire at their time and are judged under the new policy."""
        self.policy = policy
        self._rules = compile_policy(policy, self.role)
        self._grace = self._rules.grace

    def fork(
        self, policy: Policy, *, role: PolicyRole = "challenger", loader: Loader | None = None
    ) -> Engine:
        """A new engine that runs ``policy`` from this one's present: the same users' states,
        clock, deadline index and waiting events, then its own way. Deadlines already
        scheduled fire at their time, judged under ``policy`` (as after ``set_policy``).

        ``loader``: where the states this engine has saved can be read *as they are now*
        (a snapshot of its store); without one, every state this engine holds is copied.
        Changes to either engine never reach the other."""
        other = type(self)(policy, live_users=self._users.live_limit, loader=loader, role=role)
        other._clock = self._clock
        other._deadlines = dict(self._deadlines)
        other._heap = list(self._heap)  # a copy of a heap is a heap
        other._waiting = dict(self._waiting)
        other._users.copy_from(self._users, stored=loader is not None)
        return other

    def discard_dirty(self) -> None:
        """Forget which users changed (an engine whose states are never saved)."""
        self._dirty.clear()

    def closed_cycles(self, user_id: str) -> int:
        """How many times the user's line was closed (0 for an unknown user)."""
        state = self._users.peek(user_id)
        return 0 if state is None else state.cycle

    def set_live_limit(self, live_users: int) -> None:
        """Change how many user states stay live objects (the rest are held as bytes)."""
        self._users.set_limit(live_users)

    def apply(self, event: Event, *, fire_due: bool = True) -> Step:
        """Apply one event. The clock moves to its time if later; ``fire_due``: fire every
        user's deadlines due by then first (else only this user's, and ``advance_due``
        fires the others, in slices)."""
        at = to_us(event.occurred_at)
        clock = self._clock
        outputs = self._take_carried() if self._carried else []
        if clock is None or at > clock:
            self._clock = clock = at
            heap = self._heap
            if fire_due and heap and heap[0][0] <= at - self._grace:
                outputs.extend(self._fire_due(at - self._grace))
        user_id = event.user_id
        state = self._users.use(user_id)
        if event.event_id in state.seen or (
            state.waiting and any(w[1] == event.event_id for w in state.waiting)
        ):
            return Step(outputs, True)
        self._dirty.add(user_id)
        before = state.next_deadline
        late = at + self._grace < clock
        if late:
            self.late_events[event.type] += 1
        rules = self._rules
        waiting = before is not None and at >= before
        if waiting:
            self._wait(state, event, at)
        else:
            try:
                outputs.extend(decide(state, event, rules, at, self.cap_drops)[1])
            except BaseException:
                # The user's state is as it was (decide is atomic); what other users'
                # deadlines produced first is handed out by the next call.
                self._carried.extend(outputs)
                raise
            if state.timed and needs_correction(state, at):
                outputs.extend(correct(state, rules, user_id, event, at))
        deadline = state.next_deadline
        if state.waiting or (deadline is not None and deadline <= clock - self._grace):
            self._settle(user_id, state, clock - self._grace, outputs)
        if state.next_deadline != before:
            self._set_deadline(user_id, state.next_deadline)
        if waiting or user_id in self._waiting:
            self._count_waiting(user_id, state)
        return _new_step(Step, (outputs, False, late, waiting))

    def apply_overrides(self, record: OverrideRecord, *, fire_due: bool = True) -> Step:
        """Apply one override change (``workers.core.overrides``) as a fact of the user's
        history dated ``changed_at``: the clock and deadlines as for ``apply``; a change
        dated at or after the user's pending deadline waits for it like an event. A stale
        change (not after the last one applied) is a duplicate."""
        at = to_us(record.changed_at)
        clock = self._clock
        outputs = self._take_carried()
        if clock is None or at > clock:
            self._clock = clock = at
            heap = self._heap
            if fire_due and heap and heap[0][0] <= at - self._grace:
                outputs.extend(self._fire_due(at - self._grace))
        user_id = record.user_id
        state = self._users.use(user_id)
        last = state.overrides_changed_at
        if last is not None and at <= last:
            return Step(outputs, True)
        self._dirty.add(user_id)
        before = state.next_deadline
        waiting = before is not None and at >= before
        if waiting:
            entry = (at, OVERRIDE_CHANGE, record.model_dump_json())
            state.waiting.insert(bisect_right(state.waiting, at, key=lambda w: w[0]), entry)
        else:
            try:
                outputs.extend(apply_change(state, record, self._rules, at, self.cap_drops))
            except BaseException:
                self._carried.extend(outputs)
                raise
        self._settle(user_id, state, clock - self._grace, outputs)
        if state.next_deadline != before:
            self._set_deadline(user_id, state.next_deadline)
        if waiting or user_id in self._waiting:
            self._count_waiting(user_id, state)
        return Step(outputs, False, at + self._grace < clock, waiting)

    def advance(self, now: datetime, *, final: bool = False) -> list[Output]:
        """Move the clock to ``now`` (never back) and fire every deadline due by then.

        ``final``: the input is complete up to ``now``: every deadline at or before it fires
        (grace does not hold it back) and what waited on them is applied.
        """
        at = to_us(now)
        if self._clock is None or at > self._clock:
            self._clock = at
        clock = self._clock
        return self._take_carried() + self._fire_due(at if final else clock - self._grace)

    def has_due(self, now: datetime | None = None) -> bool:
        """Whether a deadline is due at the clock (moved to ``now`` if later)."""
        clock = self._clock
        if now is not None:
            moment = to_us(now)
            clock = moment if clock is None else max(clock, moment)
        return clock is not None and bool(self._heap) and self._heap[0][0] <= clock - self._grace

    def advance_due(self, now: datetime | None = None, limit: int | None = None) -> list[Output]:
        """Fire deadlines due at the clock (moved to ``now`` if later): at most ``limit``
        users' at a time, so that a burst of deadlines is fired in slices."""
        if now is not None:
            moment = to_us(now)
            if self._clock is None or moment > self._clock:
                self._clock = moment
        if self._clock is None:
            return self._take_carried()
        return self._take_carried() + self._fire_due(self._clock - self._grace, limit)

    def _take_carried(self) -> list[Output]:
        carried, self._carried = self._carried, []
        return carried

    def _wait(self, state: UserState, event: Event, at: int) -> None:
        """Hold an event dated at or after the user's pending deadline until it fires."""
        entry = (at, event.event_id, event_to_json(event).decode())
        state.waiting.insert(bisect_right(state.waiting, at, key=lambda w: w[0]), entry)

    def _settle(self, user_id: str, state: UserState, due_until: int, out: list[Output]) -> None:
        """Apply the user's waiting events dated before its next deadline, and fire its
        deadlines due by ``due_until``, in time order (a deadline first at equal instants).

        Too many waiting events fire the pending deadline early (counted as a cap drop)."""
        rules, drops = self._rules, self.cap_drops
        while True:
            deadline, waiting = state.next_deadline, state.waiting
            if waiting and (deadline is None or waiting[0][0] < deadline):
                at, key, text = waiting.pop(0)
                if key == OVERRIDE_CHANGE:
                    record = OverrideRecord.model_validate_json(text)
                    out.extend(apply_change(state, record, rules, at, drops))
                    continue
                event = parse_event(text)
                out.extend(decide(state, event, rules, at, drops)[1])
                if state.timed and needs_correction(state, at):
                    out.extend(correct(state, rules, user_id, event, at))
            elif deadline is not None and (deadline <= due_until or len(waiting) > MAX_WAITING):
                if deadline > due_until:
                    drops["waiting_events"] += 1
                out.extend(fire_deadline(state, rules, user_id, drops))
            else:
                return

    def _fire_due(self, until: int, limit: int | None = None) -> list[Output]:
        """Fire every deadline at or before ``until`` (at most ``limit`` of them), across
        users in deadline order."""
        outputs: list[Output] = []
        deadlines, users, rules, drops = self._deadlines, self._users, self._rules, self.cap_drops
        fired = 0
        # ``self._heap`` each time round: ``_set_deadline`` may rebuild it mid-loop.
        while self._heap and self._heap[0][0] <= until:
            if limit is not None and fired >= limit:
                break
            deadline, user_id = heapq.heappop(self._heap)
            if deadlines.get(user_id) != deadline:
                continue  # stale entry: the user's deadline moved since it was pushed
            fired += 1
            state, cold = users.borrow(user_id)
            outputs.extend(fire_deadline(state, rules, user_id, drops))
            # What waited on this deadline, up to the next one (which goes back in the heap).
            self._settle(user_id, state, deadline, outputs)
            if cold:
                users.put_back(user_id, state)
            self._dirty.add(user_id)
            self._set_deadline(user_id, state.next_deadline)
            if user_id in self._waiting:
                self._count_waiting(user_id, state)
        return outputs

    def _count_waiting(self, user_id: str, state: UserState) -> None:
        if state.waiting:
            self._waiting[user_id] = len(state.waiting)
        else:
            self._waiting.pop(user_id, None)

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
        self._count_waiting(user_id, state)

    def pending(self, user_id: str) -> tuple[int | None, int]:
        """A user's pending deadline (microseconds) and number of waiting events: what a
        store keeps beside the state so that a restore need not read the state."""
        return self._deadlines.get(user_id), self._waiting.get(user_id, 0)

    def restore_pending(self, user_id: str, deadline: int | None, waiting: int) -> None:
        """Index a user whose state stays in the loader's store (as ``pending`` gave it)."""
        self._set_deadline(user_id, deadline)
        if waiting:
            self._waiting[user_id] = waiting

    def drop_cold(self) -> int:
        """Forget the states held as bytes: call once every changed state is in the
        loader's store. Returns how many (none without a loader)."""
        return self._users.drop_cold()

    def state_of(self, user_id: str) -> UserState | None:
        """The user's state, made live (and the most recently used) if it was cold."""
        return self._users.find(user_id)

    def status(self, user_id: str) -> dict[str, Any] | None:
        """The status API's view of one user at the engine's clock."""
        state = self._users.peek(user_id)
        if state is None:
            return None
        now = self._clock if self._clock is not None else (state.last_at or 0)
        rules, active = self._rules, []
        for rule in STANDING:
            if rule.code not in rules.active_codes:
                continue  # the policy turns the rule off: what it would find is no signal
            truth = rule.truth_at(state, rules, now)
            if truth is not None:
                action = rules.policy.action(rule.code)
                active.append({"signal": rule.code, "action": action, "evidence": truth.evidence})
        closed = state.line == LINE_CLOSED
        return {
            "user_id": user_id,
            "line_state": state.line,
            "closures": state.cycle,
            "as_of": iso(now),
            "active_signals": active,
            "last_closure_reasons": [
                {**reason, "message": close_message(reason["code"], reason["evidence"])}
                for reason in state.close_reasons
            ],
            "closed_at": iso(state.closed_at) if state.closed_at is not None else None,
            "next_review_at": (
                iso(state.anchor + state.cooling) if closed and state.anchor is not None else None
            ),
            "unmet_restore_conditions": [
                {"code": code, "rule": rule, "message": unmet_message(code, rule)}
                for code, rule in (unmet_restore_conditions(state, rules, now) if closed else [])
            ],
            "recent_flags": [
                {"signal": f["signal"], "raised_at": iso(f["raised_at"])}
                for f in state.recent_flags
            ],
            "next_deadline_at": iso(state.next_deadline) if state.next_deadline else None,
            "waiting_events": len(state.waiting),
            "policy_version": self.policy.version,
            **self._override_status(state, now),
        }

    def _override_status(self, state: UserState, now: int) -> dict[str, Any]:
        """The overrides holding now and, while a watch holds, every rule's evidence now."""
        active = [o for o in state.overrides if holds_at(o, now)]
        if not active:
            return {"overrides": []}
        status: dict[str, Any] = {
            "overrides": [
                {
                    "id": o.override_id,
                    "kind": o.kind,
                    "rule": o.rule,
                    "actor": o.actor,
                    "reason": o.reason,
                    "note": o.note,
                    "created_at": iso(o.created_at),
                    "expires_at": iso(o.ends_at) if o.ends_at is not None else None,
                }
                for o in active
            ]
        }
        if any(o.kind == "watch" for o in active):
            watched: dict[str, Any] = {}
            for rule in RULES:
                truth = rule.truth_at(state, self._rules, now) if rule.standing else None
                watched[rule.code] = None if truth is None else truth.evidence
            status["watch_evidence"] = watched
        return status
