"""SCORE_SWIPING: loans settled within a short time of their drawdown (quick cycles), several
within a window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from workers.core.rules.base import (
    Rule,
    RuleConfig,
    Truth,
    add_timed_item,
    counted_truth,
    raise_windowed,
    window_text,
)
from workers.core.timeutil import days, hours

if TYPE_CHECKING:
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import Loan, UserState

CODE = "SCORE_SWIPING"


class ScoreSwipingConfig(RuleConfig):
    quick_cycle_hours: float = Field(48, gt=0, le=24 * 60)
    window_days: float = Field(30, gt=0, le=365)
    min_quick_cycles: int = Field(3, ge=1, le=1000)


@dataclass(frozen=True, slots=True)
class Params:
    quick_cycle: int
    window: int
    threshold: int


def is_quick_cycle(rules: Compiled, loan: Loan, settled_at: int) -> bool:
    """A loan settled within the quick-cycle time of its drawdown."""
    quick_cycle: int = rules.params[CODE].quick_cycle
    return 0 <= settled_at - loan.drawn_at <= quick_cycle


class ScoreSwiping(Rule[ScoreSwipingConfig, Params]):
    code = CODE
    config_model = ScoreSwipingConfig
    describes = "repeated quick borrow-and-repay cycles"
    close_text = (
        "Several loans were borrowed and repaid within a day or two of each other in a short "
        "period, so your credit line has been closed."
    )
    standing = True
    state_fields = ("quick_cycles",)

    def compile(self, config: ScoreSwipingConfig) -> Params:
        return Params(
            quick_cycle=hours(config.quick_cycle_hours),
            window=days(config.window_days),
            threshold=config.min_quick_cycles,
        )

    def on_settlement(self, step: Step, loan: Loan, settled_at: int) -> None:
        if not is_quick_cycle(step.rules, loan, settled_at):
            return
        state = step.state
        window: int = step.rules.params[CODE].window
        state.quick_cycles = add_timed_item(
            step, "quick_cycles", state.quick_cycles, settled_at, loan.loan_id, window
        )
        later = [t for t, _ in state.quick_cycles]
        raise_windowed(step, CODE, self.truth_at, later)

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        """Quick cycles settled within the window."""
        params: Params = rules.params[CODE]
        return counted_truth(
            state.quick_cycles,
            at,
            params.window,
            params.threshold,
            "quick_cycles",
            lambda inside: {
                "quick_cycle_max": window_text(params.quick_cycle),
                "loan_ids": [loan_id for _, loan_id in sorted(inside)],
            },
        )


RULE = ScoreSwiping()
