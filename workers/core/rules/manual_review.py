"""MANUAL_REVIEW: a person closed the line (a ``force_close`` override), and the overrides'
time: when each override holds, whose closures it holds back, and its expiry.

Overrides (``schemas.control.Override``) are facts of the user's history: a change of the
user's list is applied at its time (``workers.core.overrides``) and each override holds from
its ``created_at`` until it ends (exclusive): its ``expires_at``, or the change that removed
it. The condition of this rule holds while a ``force_close`` holds: it is the closure's
reason and it keeps the line from becoming restore-eligible. A ``suppress`` (of one rule or,
without a rule, of all) and a ``watch`` hold back closures by the rules they cover: their
flags are still raised, naming the override, but they close nothing. MANUAL_REVIEW itself is
never held back.

Time-triggered in one sense only: an override's end is a deadline of the user
(``deadline``). When a suppress or a watch ends (expiry, or removal) and a standing rule it
held back still holds, the line closes then, at that instant (``lift``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from workers.core.rules.base import FAR_FUTURE, Rule, RuleConfig, Truth
from workers.core.state import LINE_CLOSED, UserOverride
from workers.core.timeutil import iso

if TYPE_CHECKING:
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import UserState

CODE = "MANUAL_REVIEW"


class ManualReviewConfig(RuleConfig):
    """No thresholds: ``action = "flag"`` makes a force_close raise a flag only; ``off``
    ignores force_close overrides."""


def holds_at(override: UserOverride, at: int) -> bool:
    """Whether the override holds at instant ``at`` (from its creation to its end)."""
    return override.created_at <= at and (override.ends_at is None or at < override.ends_at)


def holding_back(state: UserState, code: str, at: int) -> list[UserOverride]:
    """The suppress and watch overrides that hold back closures by ``code`` at ``at``."""
    if code == CODE or code == "OVERDUE":
        return []
    return [
        override
        for override in state.overrides
        if override.kind != "force_close"
        and (override.rule is None or override.rule == code)
        and holds_at(override, at)
    ]


def reference(override: UserOverride) -> dict[str, Any]:
    """How evidence names an override."""
    return {"id": override.override_id, "kind": override.kind, "actor": override.actor}


def with_overrides(evidence: dict[str, Any], overrides: list[UserOverride]) -> dict[str, Any]:
    """``evidence`` naming ``overrides`` too (under ``overrides``, each once)."""
    named = list(evidence.get("overrides", ()))
    for override in overrides:
        ref = reference(override)
        if ref not in named:
            named.append(ref)
    return {**evidence, "overrides": named}


class ManualReview(Rule[ManualReviewConfig, None]):
    code = CODE
    config_model = ManualReviewConfig
    describes = "a manual review of the account"
    close_text = "After a manual review of your account, your credit line has been closed."
    standing = True
    time_triggered = True
    deadline_needs = "overrides"
    deadline_raises = False
    state_fields = ("overrides", "overrides_changed_at")

    def compile(self, config: ManualReviewConfig) -> None:
        return None

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        if not state.overrides:
            return None
        for override in state.overrides:
            if override.kind == "force_close" and holds_at(override, at):
                until = FAR_FUTURE if override.ends_at is None else override.ends_at
                return Truth(until, self.evidence(override))
        return None

    def evidence(self, override: UserOverride) -> dict[str, Any]:
        return {
            "overrides": [reference(override)],
            "note": override.note,
            "reason": override.reason,
            "created_at": iso(override.created_at),
            "expires_at": iso(override.ends_at) if override.ends_at is not None else None,
        }

    def deadline(self, state: UserState, rules: Compiled) -> int | None:
        """The earliest end of an override that has not taken effect yet."""
        if not state.overrides:
            return None
        ends = [o.ends_at for o in state.overrides if not o.ended and o.ends_at is not None]
        return min(ends) if ends else None

    def on_deadline(self, step: Step) -> None:
        """Overrides that end now stop holding; what they held back is judged again."""
        state, at = step.state, step.at
        if not state.overrides:
            return
        ending = [
            o for o in state.overrides if not o.ended and o.ends_at is not None and o.ends_at <= at
        ]
        if not ending:
            return
        state.overrides = [replace(o, ended=True) if o in ending else o for o in state.overrides]
        lift(step, ending)

    def message(self, evidence: dict[str, Any]) -> str:
        return self.close_text


def held_back(
    raised: dict[str, tuple[dict[str, Any], int]], state: UserState, rules: Compiled
) -> dict[str, tuple[dict[str, Any], int]]:
    """The close-worthy signals of a step (code -> evidence, instant) that no override holds
    back. One held back by overrides that have all ended since (its event came late) closes
    at their end instead, if its standing condition still held then."""
    from workers.core.rules import BY_CODE  # the registry imports this module

    kept: dict[str, tuple[dict[str, Any], int]] = {}
    for code, (evidence, at) in raised.items():
        holding = holding_back(state, code, at)
        if not holding:
            kept[code] = (evidence, at)
            continue
        if not all(o.ended and o.ends_at is not None for o in holding):
            continue
        end = max(o.ends_at or at for o in holding)
        rule = BY_CODE[code]
        truth = rule.truth_at(state, rules, end) if rule.standing else None
        if truth is not None and not holding_back(state, code, end):
            kept[code] = (with_overrides(truth.evidence, holding), end)
    return kept


def lift(step: Step, ended: list[UserOverride]) -> None:
    """Suppress and watch overrides in ``ended`` no longer hold at ``step.at``: each standing
    close rule they held back that still holds (and that no other override holds back)
    becomes a reason to close the line now."""
    from workers.core.rules import STANDING  # the registry imports this module

    state, rules, at = step.state, step.rules, step.at
    lifted = [o for o in ended if o.kind != "force_close"]
    if not lifted or state.line == LINE_CLOSED:
        return
    for rule in STANDING:
        code = rule.code
        if code == CODE or code not in rules.close_codes or code in step.raised:
            continue
        lifters = [o for o in lifted if o.rule is None or o.rule == code]
        if not lifters or holding_back(state, code, at):
            continue
        truth = rule.truth_at(state, rules, at)
        if truth is not None:
            step.raised[code] = (with_overrides(truth.evidence, lifters), at)


RULE = ManualReview()
