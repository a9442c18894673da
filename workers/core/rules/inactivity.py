"""INACTIVITY: no loan drawdown for a long time while the line is open (time-triggered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from workers.core.rules.base import Rule, RuleConfig, set_episode
from workers.core.state import LINE_CLOSED
from workers.core.timeutil import DAY, days, iso

if TYPE_CHECKING:
    from schemas.events import Event
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import UserState

CODE = "INACTIVITY"


class InactivityConfig(RuleConfig):
    days: float = Field(90, gt=0, le=3650)


@dataclass(frozen=True, slots=True)
class Params:
    quiet: int
    """How long without a drawdown."""


class Inactivity(Rule[InactivityConfig, Params]):
    code = CODE
    config_model = InactivityConfig
    describes = "a long period without borrowing"
    close_text = "You have not borrowed on your credit line for {days} days, so it has been closed."
    time_triggered = True

    def compile(self, config: InactivityConfig) -> Params:
        return Params(quiet=days(config.days))

    def due_at(self, state: UserState, rules: Compiled) -> int | None:
        """The quiet time after the later of first event, last drawdown and eligibility."""
        if state.first_at is None:
            return None
        anchor = max(state.first_at, state.last_drawdown_at or 0, state.eligible_at or 0)
        quiet: int = rules.params[CODE].quiet
        return anchor + quiet

    def deadline(self, state: UserState, rules: Compiled) -> int | None:
        # ``due_at``, inline: this runs after every event.
        if state.line == LINE_CLOSED or CODE not in rules.active_codes or state.first_at is None:
            return None
        # ``max`` spelt out: a builtin call costs more than these comparisons.
        anchor = state.first_at
        drawn_at = state.last_drawdown_at or 0
        if drawn_at > anchor:
            anchor = drawn_at
        eligible_at = state.eligible_at or 0
        if eligible_at > anchor:
            anchor = eligible_at
        deadline: int = anchor + rules.params[CODE].quiet
        return None if state.episodes.get(CODE) == deadline else deadline

    def on_deadline(self, step: Step) -> None:
        state, rules, at = step.state, step.rules, step.at
        if state.line == LINE_CLOSED or CODE not in rules.active_codes:
            return
        if self.due_at(state, rules) == at and state.episodes.get(CODE) != at:
            set_episode(state, CODE, at)
            step.raise_flag(CODE, self.evidence(state, rules), str(at))

    def evidence(self, state: UserState, rules: Compiled) -> dict[str, Any]:
        return {
            "days_without_drawdown": rules.params[CODE].quiet // DAY,
            "last_drawdown_at": iso(state.last_drawdown_at) if state.last_drawdown_at else None,
            "first_event_at": iso(state.first_at) if state.first_at is not None else None,
            "restore_eligible_at": iso(state.eligible_at) if state.eligible_at else None,
        }

    def held_at(
        self, state: UserState, rules: Compiled, deadline: int, event: Event, at: int
    ) -> bool:
        """Only a drawdown dated inside the quiet time before the deadline undoes it."""
        drawdown = event.type == "transaction" and event.kind == "loan_drawdown"
        quiet: int = rules.params[CODE].quiet
        return not (drawdown and deadline - quiet < at < deadline)

    def message(self, evidence: dict[str, Any]) -> str:
        return self.close_text.format(days=evidence.get("days_without_drawdown", 90))


RULE = Inactivity()
