"""ACCOUNT_INFO_CHURN: bank-card binds and unbinds and changes of the watched profile fields,
many within a window."""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from workers.core.rules.base import (
    Rule,
    RuleConfig,
    Truth,
    count_episode,
    raise_windowed,
    window_text,
)
from workers.core.state import MAX_CHURN_ITEMS
from workers.core.timeutil import days

if TYPE_CHECKING:
    from schemas.events import Event
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import UserState

CODE = "ACCOUNT_INFO_CHURN"


class AccountInfoChurnConfig(RuleConfig):
    window_days: float = Field(30, gt=0, le=365)
    min_changes: int = Field(4, ge=1, le=1000)
    profile_fields: tuple[Literal["phone", "identity", "occupation", "address"], ...] = (
        "phone",
        "identity",
    )


@dataclass(frozen=True, slots=True)
class Params:
    window: int
    threshold: int
    fields: frozenset[str]


class AccountInfoChurn(Rule[AccountInfoChurnConfig, Params]):
    code = CODE
    config_model = AccountInfoChurnConfig
    describes = "frequent account detail changes"
    close_text = (
        "Your bank cards or verified phone or identity details were changed many times "
        "recently, so your credit line has been closed to protect you."
    )
    standing = True
    events = frozenset({"bank_card_change", "profile_change"})
    state_fields = ("churn",)

    def compile(self, config: AccountInfoChurnConfig) -> Params:
        return Params(
            window=days(config.window_days),
            threshold=config.min_changes,
            fields=frozenset(config.profile_fields),
        )

    def on_event(self, step: Step, event: Event) -> None:
        if event.type == "bank_card_change":
            self._change(step, f"card_{event.action}", event.event_id)
        elif event.type == "profile_change" and event.field in step.rules.params[CODE].fields:
            self._change(step, event.field, event.event_id)

    def _change(self, step: Step, what: str, event_id: str) -> None:
        state, at = step.state, step.at
        window: int = step.rules.params[CODE].window
        horizon = (state.last_at or at) - window
        state.churn = [item for item in state.churn if item[0] >= horizon]
        insort(state.churn, (at, event_id, what))
        if len(state.churn) > MAX_CHURN_ITEMS:
            step.dropped("churn_changes", len(state.churn) - MAX_CHURN_ITEMS)
            del state.churn[:-MAX_CHURN_ITEMS]
        later = [t for t, _, _ in state.churn if at < t <= at + window]
        raise_windowed(step, CODE, self.truth_at, later)

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        params: Params = rules.params[CODE]
        found = count_episode(
            [(t, event_id) for t, event_id, _ in state.churn], at, params.window, params.threshold
        )
        if found is None:
            return None
        until, inside = found
        kinds = {event_id: what for _, event_id, what in state.churn}
        return Truth(
            until,
            {
                "window": window_text(params.window),
                "changes": len(inside),
                "threshold": params.threshold,
                "event_ids": [event_id for _, event_id in sorted(inside)],
                "kinds": sorted({kinds[event_id] for _, event_id in inside}),
            },
        )


RULE = AccountInfoChurn()
