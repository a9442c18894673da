"""FREQUENT_EARLY_REPAYMENT: loans settled well after their drawdown but before their final
due date, several within a window. A quick cycle (see ``score_swiping``) is never early."""

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
)
from workers.core.rules.score_swiping import is_quick_cycle
from workers.core.timeutil import days, hours

if TYPE_CHECKING:
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import Loan, UserState

CODE = "FREQUENT_EARLY_REPAYMENT"


class FrequentEarlyRepaymentConfig(RuleConfig):
    min_hours_after_drawdown: float = Field(48, ge=0, le=24 * 365)
    window_days: float = Field(90, gt=0, le=365)
    min_early_settlements: int = Field(4, ge=1, le=1000)


@dataclass(frozen=True, slots=True)
class Params:
    after: int
    window: int
    threshold: int


class FrequentEarlyRepayment(Rule[FrequentEarlyRepaymentConfig, Params]):
    code = CODE
    config_model = FrequentEarlyRepaymentConfig
    describes = "frequent early repayment"
    close_text = (
        "Several loans were repaid in full long before they were due in recent months, "
        "so your credit line has been closed."
    )
    standing = True
    state_fields = ("early_settlements",)

    def compile(self, config: FrequentEarlyRepaymentConfig) -> Params:
        return Params(
            after=hours(config.min_hours_after_drawdown),
            window=days(config.window_days),
            threshold=config.min_early_settlements,
        )

    def on_settlement(self, step: Step, loan: Loan, settled_at: int) -> None:
        params: Params = step.rules.params[CODE]
        if (
            settled_at - loan.drawn_at <= params.after
            or settled_at >= loan.final_due
            or is_quick_cycle(step.rules, loan, settled_at)
        ):
            return
        state = step.state
        state.early_settlements = add_timed_item(
            step,
            "early_settlements",
            state.early_settlements,
            settled_at,
            loan.loan_id,
            params.window,
        )
        later = [t for t, _ in state.early_settlements]
        raise_windowed(step, CODE, self.truth_at, later)

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        """Early settlements within the window."""
        params: Params = rules.params[CODE]
        return counted_truth(
            state.early_settlements,
            at,
            params.window,
            params.threshold,
            "early_settlements",
            lambda inside: {"loan_ids": [loan_id for _, loan_id in sorted(inside)]},
        )


RULE = FrequentEarlyRepayment()
