"""An override change as a fact of the user's history: ``apply_change(state, record, ...)``.

A record (``schemas.control.OverrideRecord``) is the user's full list of overrides after one
change, dated ``changed_at``. Applied at that instant, like an event:

- an override new to the user takes effect (a ``force_close`` raises ``MANUAL_REVIEW`` and
  closes the line now, unless it is already closed);
- one the user had that the record no longer lists ends now; if it was a suppress or a
  watch, what it held back is judged again now (``manual_review.lift``);
- one in both takes the record's fields (a new expiry, say);
- one that ended (expired, or removed) and is listed again unchanged stays ended;
- a record dated at or before the last change applied is stale (a redelivery): it changes
  nothing.

What a change decides names the overrides that shaped it (``manual_review.with_overrides``):
a forced closure, a closure when a suppression ends, a restore when a forced closure ends.

An override that ended stays in the state for a while (``MAX_ENDED_OVERRIDES``, within the
dedupe window), so that an event dated while it held and arriving later is still judged
under it. Pure and atomic like ``decide``: on failure the state is as it was.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from schemas.control import Override, OverrideRecord
from schemas.outputs import Decision, Output
from workers.core.compiled import Compiled
from workers.core.lifecycle import WRITES as LIFECYCLE_WRITES
from workers.core.lifecycle import Step, schedule
from workers.core.rules.manual_review import CODE, RULE, holds_at, lift, with_overrides
from workers.core.state import MAX_ENDED_OVERRIDES, FieldSaver, UserOverride, UserState
from workers.core.timeutil import iso, to_us

_SAVER = FieldSaver(tuple(sorted({*LIFECYCLE_WRITES, *RULE.writes})))


def trigger_id(at: int) -> str:
    """The ``trigger_event_id`` of what an override change dated ``at`` caused."""
    return f"overrides@{iso(at)}"


def apply_change(
    state: UserState,
    record: OverrideRecord,
    rules: Compiled,
    at: int | None = None,
    drops: Counter[str] | None = None,
) -> list[Output]:
    """Apply one override change to one user's state; returns what it decided."""
    if at is None:
        at = to_us(record.changed_at)
    last = state.overrides_changed_at
    if last is not None and at <= last:
        return []
    saved = _SAVER.save(state)
    try:
        return _apply(state, record, rules, at, drops)
    except BaseException:
        _SAVER.restore(state, saved)
        raise


def _apply(
    state: UserState,
    record: OverrideRecord,
    rules: Compiled,
    at: int,
    drops: Counter[str] | None,
) -> list[Output]:
    step = Step(state, rules, record.user_id, at, trigger_id(at), drops)
    listed = {override.id: override for override in record.overrides}
    kept: list[UserOverride] = []
    ended: list[UserOverride] = []
    known: set[str] = set()
    for item in state.overrides:
        if item.ended:
            kept.append(item)
            continue
        new = listed.get(item.override_id)
        if new is None:  # removed by this change: it ends now
            end = at if item.ends_at is None else min(item.ends_at, at)
            item = replace(item, ends_at=end, ended=True)
            ended.append(item)
        else:
            known.add(item.override_id)
            item = _from_contract(new, at)
            if item.ended:
                ended.append(item)
        kept.append(item)
    # An override that ended stays ended: listed again unchanged (an expired one a producer
    # did not drop), it is not added again.
    ended_before = {(o.override_id, o.created_at) for o in state.overrides if o.ended}
    added = [
        _from_contract(o, at)
        for o in record.overrides
        if o.id not in known and (o.id, to_us(o.created_at)) not in ended_before
    ]
    state.overrides = _bounded([*kept, *added], at, rules, step)
    state.overrides_changed_at = at
    for item in added:
        if item.kind == "force_close" and holds_at(item, at):
            step.raise_flag(CODE, RULE.evidence(item), key=item.override_id)
    lift(step, ended)
    step.finish()
    schedule(state, rules)
    released = [o for o in ended if o.kind == "force_close"]
    if released:  # a restore that the end of a forced closure let happen names it
        return [_naming(output, released) for output in step.outputs]
    return step.outputs


def _naming(output: Output, overrides: list[UserOverride]) -> Output:
    if not isinstance(output, Decision) or output.decision != "restore_eligibility":
        return output
    reasons = [
        reason.model_copy(update={"evidence": with_overrides(reason.evidence, overrides)})
        for reason in output.reasons
    ]
    return output.model_copy(update={"reasons": reasons})


def _from_contract(override: Override, at: int) -> UserOverride:
    ends_at = None if override.expires_at is None else to_us(override.expires_at)
    return UserOverride(
        override.id,
        override.kind,
        override.rule,
        override.actor,
        override.reason,
        override.note,
        to_us(override.created_at),
        ends_at,
        ends_at is not None and ends_at <= at,
    )


def _bounded(
    overrides: list[UserOverride], at: int, rules: Compiled, step: Step
) -> list[UserOverride]:
    """Ended overrides are kept within the dedupe window, the latest ``MAX_ENDED_OVERRIDES``."""
    horizon = at - rules.dedupe_window
    kept = [o for o in overrides if not o.ended or (o.ends_at or at) >= horizon]
    ended = [o for o in kept if o.ended]
    if len(ended) > MAX_ENDED_OVERRIDES:
        ended.sort(key=lambda o: o.ends_at or at)
        forgotten = ended[: len(ended) - MAX_ENDED_OVERRIDES]
        step.dropped("overrides", len(forgotten))
        kept = [o for o in kept if not any(o is f for f in forgotten)]
    return kept
