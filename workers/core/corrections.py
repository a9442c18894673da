"""Late data: an event that arrives after a deadline it predates has already fired.

Deadlines wait ``grace`` for events dated before them (see ``engine``). An event that comes
later still (a *late* event) is applied like any other, and then every time-triggered
output it would have prevented is corrected: re-judged as of its deadline with the late
event included, a flag whose condition no longer holds is retracted, and a closure whose
reasons were all time-triggered and none of which holds any more is retracted too, while
the line is still in that closure's cycle. The line is then open again, as if that closure
had not happened; everything that still holds is kept.
"""

from __future__ import annotations

from typing import Any

from schemas.events import Event
from schemas.outputs import Decision, Flag, Output, Reason
from workers.core.compiled import Compiled
from workers.core.installments import unpaid_at
from workers.core.lifecycle import stable_id
from workers.core.messages import code_text
from workers.core.rules import BY_CODE, TIME_TRIGGERED_CODES
from workers.core.state import LINE_CLOSED, LINE_OPEN, UserState
from workers.core.timeutil import from_us, iso

CORRECTION_MESSAGE = (
    "Information that arrived late shows that {what} did not apply when your credit line "
    "was closed, so the closure has been withdrawn and your credit line is open again."
)


def needs_correction(state: UserState, at: int) -> bool:
    """Whether a time-triggered output fired after ``at`` (cheap; usually no)."""
    return any(record[2] > at for record in state.timed)


def correct(state: UserState, rules: Compiled, user_id: str, event: Event, at: int) -> list[Output]:
    """The corrections a late ``event`` (dated ``at``, already applied) calls for."""
    outputs: list[Output] = []
    retracted: list[str] = []
    for record in state.timed:
        kind, code, deadline, key, output_id, _cycle = record
        if kind != "flag" or deadline <= at or output_id in retracted:
            continue
        if _flag_holds(state, rules, code, deadline, key, event, at):
            continue
        retracted.append(output_id)
        outputs.append(_retraction(state, rules, user_id, event, at, record))
        state.recent_flags = [
            f
            for f in state.recent_flags
            if (f["signal"], f["raised_at"], f["key"]) != (code, deadline, key)
        ]
    state.timed = [record for record in state.timed if record[4] not in retracted]
    closure = next(
        (r for r in reversed(state.timed) if r[0] == "close" and r[5] == state.cycle), None
    )
    if (
        closure is not None
        and closure[2] > at
        and state.line == LINE_CLOSED
        and not any(
            _condition_holds(state, rules, code, closure[2], event, at)
            for code in closure[1].split("+")
        )
    ):
        outputs.append(_withdraw(state, rules, user_id, event, at, closure, retracted))
    elif retracted and state.line == LINE_CLOSED and state.closed_at is not None:
        _restart_cooling_without_retracted(state)
    return outputs


def _flag_holds(
    state: UserState, rules: Compiled, code: str, deadline: int, key: str, event: Event, at: int
) -> bool:
    if code == "OVERDUE":
        return unpaid_at(state, key.split("@")[0], deadline)
    return _condition_holds(state, rules, code, deadline, event, at)


def _condition_holds(
    state: UserState, rules: Compiled, code: str, deadline: int, event: Event, at: int
) -> bool:
    """Whether a time-triggered condition held at ``deadline``, the late event included."""
    if code not in TIME_TRIGGERED_CODES:
        return True  # not a time-triggered condition: never corrected
    return BY_CODE[code].held_at(state, rules, deadline, event, at)


def _retraction(
    state: UserState,
    rules: Compiled,
    user_id: str,
    event: Event,
    at: int,
    record: list[Any],
) -> Flag:
    _, code, deadline, key, flag_id, _ = record
    overdue_days = int(key.rsplit("@", 1)[1]) if code == "OVERDUE" else None
    return Flag(
        flag_id=stable_id(user_id, "retraction", flag_id),
        user_id=user_id,
        signal=code,
        overdue_days=overdue_days,
        evidence={
            "retracted_flag_id": flag_id,
            "retracted_raised_at": iso(deadline),
            "late_event_id": event.event_id,
            "late_event_type": event.type,
            "late_event_occurred_at": iso(at),
        },
        raised_at=from_us(at),
        trigger_event_id=event.event_id,
        policy_version=rules.version,
        policy_role=rules.role,
        retracts=flag_id,
    )


def _withdraw(
    state: UserState,
    rules: Compiled,
    user_id: str,
    event: Event,
    at: int,
    closure: list[Any],
    retracted_flags: list[str],
) -> Decision:
    """Withdraw the closure: the line is open again, as if it had not happened."""
    _, joined, decided_at, _, decision_id, cycle = closure
    codes = joined.split("+")
    state.line = LINE_OPEN
    state.closed_at = None
    state.close_reasons = []
    state.cooling = 0
    state.anchor = None
    state.awaiting_restore = False
    state.timed = [record for record in state.timed if record is not closure]
    what = " and ".join(code_text(code) for code in codes)
    return Decision(
        decision_id=stable_id(user_id, "close_line_retracted", cycle),
        user_id=user_id,
        decision="close_line_retracted",
        reasons=[
            Reason(
                code="LATE_DATA_CORRECTION",
                message=CORRECTION_MESSAGE.format(what=what),
                evidence={
                    "retracted_decision_id": decision_id,
                    "retracted_decided_at": iso(decided_at),
                    "retracted_reasons": codes,
                    "retracted_flag_ids": retracted_flags,
                    "late_event_id": event.event_id,
                    "late_event_type": event.type,
                    "late_event_occurred_at": iso(at),
                },
            )
        ],
        decided_at=from_us(at),
        trigger_event_id=event.event_id,
        policy_version=rules.version,
        policy_role=rules.role,
        line_state=LINE_OPEN,
        next_review_at=None,
        supersedes=decision_id,
    )


def _restart_cooling_without_retracted(state: UserState) -> None:
    """A retracted flag no longer restarts cooling: count it from the latest signal left."""
    closed_at = state.closed_at
    assert closed_at is not None
    moments = [closed_at]
    moments += [f["raised_at"] for f in state.recent_flags if f["raised_at"] >= closed_at]
    if state.last_cleared_at is not None and state.last_cleared_at >= closed_at:
        moments.append(state.last_cleared_at)
    state.anchor = max(moments)
