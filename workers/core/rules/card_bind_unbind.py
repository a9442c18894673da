"""CARD_BIND_UNBIND: a bank card bound and unbound again within a short time (an hour by
default), several times within a window (twice in 30 days): cards tried out and dropped.
Flag-only in the default policy."""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from workers.core.rules.base import (
    Action,
    Rule,
    RuleConfig,
    Truth,
    counted_truth,
    raise_windowed,
    window_text,
)
from workers.core.timeutil import days, hours, iso

if TYPE_CHECKING:
    from schemas.events import Event
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import UserState

CODE = "CARD_BIND_UNBIND"

MAX_CARD_CHANGES = 64
"""At most this many binds and unbinds remembered (the latest)."""


class CardBindUnbindConfig(RuleConfig):
    action: Action = "flag"
    unbound_within_hours: float = Field(1, gt=0, le=24 * 7)
    window_days: float = Field(30, gt=0, le=365)
    min_quick_unbinds: int = Field(2, ge=1, le=1000)


@dataclass(frozen=True, slots=True)
class Params:
    quick: int
    window: int
    threshold: int


class CardBindUnbind(Rule[CardBindUnbindConfig, Params]):
    code = CODE
    config_model = CardBindUnbindConfig
    describes = "bank cards added and removed again within minutes"
    close_text = (
        "Bank cards were added to your account and removed again shortly afterwards several "
        "times recently, so your credit line has been closed to protect you."
    )
    standing = True
    events = frozenset({"bank_card_change"})
    facts = ("card_changes",)

    def compile(self, config: CardBindUnbindConfig) -> Params:
        return Params(
            quick=hours(config.unbound_within_hours),
            window=days(config.window_days),
            threshold=config.min_quick_unbinds,
        )

    def retain(self, params: list[Params]) -> Params:
        return Params(
            quick=max(p.quick for p in params),
            window=max(p.window for p in params),
            threshold=0,
        )

    def observe(self, step: Step, event: Event) -> None:
        if event.type != "bank_card_change":
            return
        state, at = step.state, step.at
        params: Params = step.rules.params[CODE]
        horizon = (state.last_at or at) - params.window - params.quick
        changes = [item for item in state.card_changes if item[0] >= horizon]
        insort(changes, (at, event.card_id, event.action))
        if len(changes) > MAX_CARD_CHANGES:
            step.dropped("card_changes", len(changes) - MAX_CARD_CHANGES)
            del changes[:-MAX_CARD_CHANGES]
        state.card_changes = changes

    def on_event(self, step: Step, event: Event) -> None:
        if event.type != "bank_card_change":
            return
        state, at = step.state, step.at
        params: Params = step.rules.params[CODE]
        later = [t for t, _ in quick_unbinds(state, params) if at < t <= at + params.window]
        raise_windowed(step, CODE, self.truth_at, later)

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        params: Params = rules.params[CODE]
        return counted_truth(
            quick_unbinds(state, params),
            at,
            params.window,
            params.threshold,
            "quick_unbinds",
            lambda inside: {
                "unbound_within": window_text(params.quick),
                "unbinds": [{"card_id": card, "unbound_at": iso(t)} for t, card in sorted(inside)],
            },
        )


def quick_unbinds(state: UserState, params: Params) -> list[tuple[int, str]]:
    """(unbound_at, card_id) of each unbind that follows a bind of the same card by at most
    the quick time, in time order (whatever order the two arrived in)."""
    found: list[tuple[int, str]] = []
    changes = state.card_changes
    for index, (at, card, action) in enumerate(changes):
        if action != "unbind":
            continue
        for earlier_at, earlier_card, earlier_action in reversed(changes[:index]):
            if at - earlier_at > params.quick:
                break
            if earlier_card == card:  # the card's change before this unbind
                if earlier_action == "bind":
                    found.append((at, card))
                break
    return found


RULE = CardBindUnbind()
