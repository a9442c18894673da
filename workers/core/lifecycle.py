"""The credit-line lifecycle: flags, closure, restore eligibility and the user's next deadline.

A ``Step`` is one instant of one user's history (an event, or a deadline): it collects the
flags raised at that instant, then ``finish`` closes the line or grants restore eligibility.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from hashlib import sha1
from typing import Any

from schemas.outputs import Decision, Flag, Output, Reason
from workers.core.compiled import Compiled
from workers.core.installments import past_due_since
from workers.core.messages import close_message, restore_message
from workers.core.rules import RULES, STANDING, TIME_TRIGGERED, TIME_TRIGGERED_CODES
from workers.core.rules.manual_review import held_back, holding_back, with_overrides
from workers.core.state import (
    LINE_CLOSED,
    LINE_OPEN,
    LINE_RESTORE_ELIGIBLE,
    MAX_RECENT_FLAGS,
    MAX_TIMED,
    Loan,
    UserOverride,
    UserState,
)
from workers.core.timeutil import DAY, from_us, iso

WRITES = (
    "line",
    "cycle",
    "closed_at",
    "close_reasons",
    "cooling",
    "anchor",
    "awaiting_restore",
    "eligible_at",
    "episodes",
    "recent_flags",
    "timed",
    "next_deadline",
)
"""The fields of ``UserState`` a step may change whatever happens: flags, episodes, the
line's lifecycle and the next deadline."""

_NAMESPACE = uuid.UUID("5d0c3f4e-8a43-4e0b-9a57-6c1f0e2b7a11")
_NAMESPACE_BYTES = _NAMESPACE.bytes
_VERSION_5 = (0xF000 << 64) | (0xC000 << 48), (0x5000 << 64) | (0x8000 << 48)
"""The bits RFC 4122 clears, and those it sets, in a name-based SHA-1 (version 5) UUID."""


def stable_id(*parts: object) -> str:
    """``uuid.uuid5(_NAMESPACE, the parts joined by U+001F)`` as text, computed directly
    (the same string, in a third of the time: an id is built for every output)."""
    name = "\x1f".join([part if type(part) is str else str(part) for part in parts])
    value = int.from_bytes(sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    text = "%032x" % (value & ~_VERSION_5[0] | _VERSION_5[1])
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class Step:
    """Everything that happens to one user at one instant ``at``."""

    __slots__ = (
        "at",
        "cleared",
        "drops",
        "outputs",
        "raised",
        "rules",
        "settlements",
        "state",
        "trigger",
        "user_id",
    )

    def __init__(
        self,
        state: UserState,
        rules: Compiled,
        user_id: str,
        at: int,
        trigger: str | None,
        drops: Counter[str] | None = None,
    ) -> None:
        self.state = state
        self.rules = rules
        self.user_id = user_id
        self.at = at
        self.trigger = trigger
        self.drops = drops
        self.outputs: list[Output] = []
        self.raised: dict[str, tuple[dict[str, Any], int]] = {}
        """Close-worthy signals raised in this step: evidence, and when each became true."""
        self.settlements: list[tuple[Loan, int]] | None = None
        """Loans the event's facts settled (whichever of the drawdown and the settlement
        arrived last), with when: for the rules that judge settlements."""
        self.cleared = False
        """The event's facts paid off a past-due installment (a negative signal)."""

    def dropped(self, what: str, count: int = 1) -> None:
        """A size cap forced ``count`` items of ``what`` out of the state."""
        if self.drops is not None:
            self.drops[what] += count

    def raise_flag(
        self,
        signal: str,
        evidence: dict[str, Any],
        key: str = "",
        overdue_days: int | None = None,
        at: int | None = None,
    ) -> None:
        """Emit a flag; flags are the negative signals that restart a cooling period.

        ``at``: when the condition became true, if later than the step's instant (an event
        that arrived out of order completed a window whose last item is later)."""
        if signal != "OVERDUE" and signal not in self.rules.active_codes:
            return
        state = self.state
        at = self.at if at is None else at
        if state.overrides:
            held = holding_back(state, signal, at)
            if held:  # the flag names the overrides that hold its closure back
                evidence = with_overrides(evidence, held)
        flag_id = stable_id(self.user_id, signal, at, key, self.rules.version)
        if self.trigger is None:  # a deadline raised it: a late event may prove it wrong
            remember_timed(state, ["flag", signal, at, key, flag_id, state.cycle])
        self.outputs.append(
            Flag(
                flag_id=flag_id,
                user_id=self.user_id,
                signal=signal,
                overdue_days=overdue_days,
                evidence=evidence,
                raised_at=from_us(at),
                trigger_event_id=self.trigger,
                policy_version=self.rules.version,
                policy_role=self.rules.role,
            )
        )
        recent = {"signal": signal, "raised_at": at, "key": key}
        state.recent_flags = [*state.recent_flags[1 - MAX_RECENT_FLAGS :], recent]
        self.negative_signal(at)
        if signal in self.rules.close_codes and signal not in self.raised:
            self.raised[signal] = (evidence, at)

    def negative_signal(self, at: int | None = None) -> None:
        """A flag or a cleared overdue installment: a closed line's cooling restarts now."""
        state = self.state
        if state.line == LINE_CLOSED:
            at = self.at if at is None else at
            state.anchor = max(state.anchor or at, at)
            state.awaiting_restore = False

    def finish(self) -> None:
        """Close the line if a close-worthy flag was raised; else maybe grant eligibility."""
        state = self.state
        if self.raised and state.overrides:
            self.raised = held_back(self.raised, state, self.rules)
        if self.raised and state.line != LINE_CLOSED:
            close_at = min(at for _, at in self.raised.values())
            self._close(close_at)
            for _, at in self.raised.values():
                if at > close_at:  # raised later than the closure: restarts its cooling
                    self.negative_signal(at)
        elif state.line == LINE_CLOSED and state.awaiting_restore and self.trigger is not None:
            self.try_restore()

    def _close(self, at: int) -> None:
        state, rules = self.state, self.rules
        reasons: list[tuple[str, dict[str, Any]]] = []
        held: list[UserOverride] = []
        for rule in RULES:
            code = rule.code
            if code not in rules.close_codes:
                continue
            raised = self.raised.get(code)
            if raised is not None and raised[1] == at:
                reasons.append((code, raised[0]))
                continue
            truth = rule.truth_at(state, rules, at) if rule.standing else None
            if truth is not None:
                holding = holding_back(state, code, at) if state.overrides else None
                if holding:
                    held.extend(holding)  # held back: not a reason of this closure
                else:
                    reasons.append((code, truth.evidence))
        if held:  # the closure names the overrides that left reasons out
            reasons = [(code, with_overrides(ev, held)) for code, ev in reasons]
        codes = {code for code, _ in reasons}
        state.line = LINE_CLOSED
        state.cycle += 1
        state.closed_at = at
        state.close_reasons = [{"code": code, "evidence": ev} for code, ev in reasons]
        state.cooling = rules.severe_cooling if codes & rules.severe_codes else rules.cooling
        state.anchor = at
        state.awaiting_restore = False
        decision_id = stable_id(self.user_id, "close_line", state.cycle)
        if self.trigger is None and codes <= TIME_TRIGGERED_CODES:
            record = ["close", "+".join(sorted(codes)), at, "", decision_id, state.cycle]
            remember_timed(state, record)
        self.outputs.append(
            Decision(
                decision_id=decision_id,
                user_id=self.user_id,
                decision="close_line",
                reasons=[
                    Reason(code=code, message=close_message(code, ev), evidence=ev)
                    for code, ev in reasons
                ],
                decided_at=from_us(at),
                trigger_event_id=self.trigger,
                policy_version=rules.version,
                policy_role=rules.role,
                line_state=LINE_CLOSED,
                next_review_at=from_us(at + state.cooling),
            )
        )

    def try_restore(self) -> None:
        """Grant restore eligibility at ``at`` if every condition holds, else wait for an event."""
        state, rules, at = self.state, self.rules, self.at
        if unmet_restore_conditions(state, rules, at):
            state.awaiting_restore = True
            return
        state.line = LINE_RESTORE_ELIGIBLE
        state.eligible_at = at
        state.awaiting_restore = False
        cooling_days = state.cooling // DAY
        evidence = {
            "closed_at": iso(state.closed_at or at),
            "cooling_days": cooling_days,
            "cooling_started_at": iso(state.anchor or at),
            "last_login_at": iso(state.last_login_at) if state.last_login_at else None,
            "credit_score": state.score,
        }
        self.outputs.append(
            Decision(
                decision_id=stable_id(self.user_id, "restore_eligibility", state.cycle),
                user_id=self.user_id,
                decision="restore_eligibility",
                reasons=[
                    Reason(
                        code=reason["code"],
                        message=restore_message(reason["code"], cooling_days),
                        evidence=evidence,
                    )
                    for reason in state.close_reasons
                ],
                decided_at=from_us(at),
                trigger_event_id=self.trigger,
                policy_version=rules.version,
                policy_role=rules.role,
                line_state=LINE_RESTORE_ELIGIBLE,
                next_review_at=None,
            )
        )


def remember_timed(state: UserState, record: list[Any]) -> None:
    """Keep a time-triggered output so that a late event can correct it (bounded)."""
    state.timed = [*state.timed[1 - MAX_TIMED :], record]


Unmet = tuple[str, str | None]
"""An unmet restore condition: its code, and for ``RISK_STILL_PRESENT`` the rule's code."""


def unmet_restore_conditions(state: UserState, rules: Compiled, at: int) -> list[Unmet]:
    """The restore conditions not yet met at ``at`` (empty: eligible)."""
    unmet: list[Unmet] = []
    if state.anchor is not None and at < state.anchor + state.cooling:
        unmet.append(("COOLING_PERIOD_NOT_OVER", None))
    if any(
        item.paid < item.billed and past_due_since(item) <= at
        for item in state.installments.values()
    ):
        unmet.append(("INSTALLMENT_PAST_DUE", None))
    if state.score is not None and state.score < rules.restore_min_score:
        unmet.append(("CREDIT_SCORE_TOO_LOW", None))
    if state.last_login_at is None or state.last_login_at < at - rules.recent_login:
        unmet.append(("NO_RECENT_LOGIN", None))
    # The risk must be over: no close rule's condition may still hold (INACTIVITY counts
    # from the eligibility, so it cannot hold yet).
    for rule in STANDING:
        if rule.code in rules.close_codes and rule.truth_at(state, rules, at):
            unmet.append(("RISK_STILL_PRESENT", rule.code))
    return unmet


def _compile_earliest() -> Callable[[UserState, Compiled], int | None]:
    """The earliest deadline of the time-triggered rules, as one function compiled for the
    registry (as ``state.FieldSaver`` compiles its methods): it asks each rule's ``deadline``
    in registry order, and a rule whose ``deadline_needs`` field is empty not at all. A loop
    over the rules, with a ``getattr`` for each field, cost twice as much, after every event.
    """
    lines = ["def earliest(state, rules):", "    best = None"]
    for index, rule in enumerate(TIME_TRIGGERED):
        ask = [
            f"deadline = rule_{index}.deadline(state, rules)",
            "if deadline is not None and (best is None or deadline < best):",
            "    best = deadline",
        ]
        if rule.deadline_needs is not None:
            ask = [f"if state.{rule.deadline_needs}:", *(f"    {line}" for line in ask)]
        lines += [f"    {line}" for line in ask]
    lines.append("    return best")
    namespace: dict[str, Any] = {f"rule_{i}": rule for i, rule in enumerate(TIME_TRIGGERED)}
    exec(compile("\n".join(lines) + "\n", "<earliest deadline>", "exec"), namespace)
    earliest: Callable[[UserState, Compiled], int | None] = namespace["earliest"]
    return earliest


_earliest = _compile_earliest()


def schedule(state: UserState, rules: Compiled) -> None:
    """Set the user's next deadline: the earliest of the time-triggered rules' (overdue
    milestones, inactivity, overrides' ends) and, for a closed line, the end of its cooling."""
    best = _earliest(state, rules)
    if state.line == LINE_CLOSED and not state.awaiting_restore and state.anchor is not None:
        deadline = state.anchor + state.cooling
        if best is None or deadline < best:
            best = deadline
    state.next_deadline = best


def fire_deadline(
    state: UserState, rules: Compiled, user_id: str, drops: Counter[str] | None = None
) -> list[Output]:
    """Fire everything due at the user's next deadline (which the caller has reached)."""
    at = state.next_deadline
    if at is None:
        return []
    step = Step(state, rules, user_id, at, None, drops)
    for rule in TIME_TRIGGERED:
        rule.on_deadline(step)
    step.finish()
    if (
        state.line == LINE_CLOSED
        and not state.awaiting_restore
        and state.anchor is not None
        and state.anchor + state.cooling <= at
    ):
        step.try_restore()
    schedule(state, rules)
    return step.outputs


__all__ = [
    "LINE_OPEN",
    "Output",
    "Step",
    "fire_deadline",
    "schedule",
    "stable_id",
    "unmet_restore_conditions",
]
