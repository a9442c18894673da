"""SERIOUS_OVERDUE: an installment of any product unpaid the policy's days after its due
date; OVERDUE flags at the milestone days on the way (time-triggered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from workers.core.installments import installment_evidence, overdue_days, unpaid_at
from workers.core.rules.base import (
    FAR_FUTURE,
    Rule,
    RuleConfig,
    Truth,
    end_episode,
    set_episode,
)
from workers.core.state import installment_key
from workers.core.timeutil import DAY, day_start_us

if TYPE_CHECKING:
    from schemas.events import Event
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import UserState

CODE = "SERIOUS_OVERDUE"

_PRODUCT_NAMES = {"jiebei": "Jiebei loan", "huabei": "Huabei", "reserve": "reserve fund"}


class SeriousOverdueConfig(RuleConfig):
    days: int = Field(30, ge=1, le=365)
    flag_milestones: tuple[int, ...] = (1, 7, 15, 30)

    @field_validator("flag_milestones")
    @classmethod
    def _sorted_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 1 for day in value) or list(value) != sorted(set(value)):
            raise ValueError("flag_milestones must be increasing positive day counts")
        return value


@dataclass(frozen=True, slots=True)
class Params:
    days: int
    milestones: tuple[int, ...]
    """Overdue days at which something fires: the flag milestones and ``days``."""
    flag_milestones: frozenset[int]


class SeriousOverdue(Rule[SeriousOverdueConfig, Params]):
    code = CODE
    config_model = SeriousOverdueConfig
    describes = "a seriously overdue repayment"
    close_text = (
        "A repayment on your {product} has been overdue for {days} days or more, "
        "so your credit line has been closed."
    )
    standing = True
    time_triggered = True
    deadline_needs = "installments"
    events = frozenset({"repayment"})
    state_fields = ("milestones",)

    def compile(self, config: SeriousOverdueConfig) -> Params:
        return Params(
            days=config.days,
            milestones=tuple(sorted(set(config.flag_milestones) | {config.days})),
            flag_milestones=frozenset(config.flag_milestones),
        )

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        days: int = rules.params[CODE].days
        worst = [
            item
            for item in state.installments.values()
            if item.paid < item.billed and overdue_days(item, at) >= days
        ]
        if not worst:
            return None
        worst.sort(key=lambda item: (item.due_day, item.loan_id, item.number))
        return Truth(
            FAR_FUTURE,
            {
                "threshold_days": days,
                "installments": [installment_evidence(item, at) for item in worst[:8]],
            },
        )

    def on_event(self, step: Step, event: Event) -> None:
        """A payment that leaves nothing seriously overdue ends the episode; the milestones
        of installments paid off are forgotten."""
        state = step.state
        if state.milestones:
            installments = state.installments
            kept = {key: n for key, n in state.milestones.items() if key in installments}
            if len(kept) != len(state.milestones):
                state.milestones = kept
        if (
            event.type == "repayment"
            and event.kind != "installment_due"
            and CODE in state.episodes
            and self.truth_at(state, step.rules, step.at) is None
        ):
            end_episode(state, CODE)

    def deadline(self, state: UserState, rules: Compiled) -> int | None:
        """The earliest overdue milestone not yet reached of an unpaid installment."""
        best: int | None = None
        milestones = rules.params[CODE].milestones
        reached = state.milestones
        for key, item in state.installments.items():
            done = reached.get(key, 0) if reached else 0
            if done < len(milestones) and item.paid < item.billed:
                due = (item.due_day + milestones[done]) * DAY
                if best is None or due < best:
                    best = due
        return best

    def on_deadline(self, step: Step) -> None:
        state, rules, at = step.state, step.rules, step.at
        params: Params = rules.params[CODE]
        milestones = params.milestones
        due_items = sorted(
            (item for item in state.installments.values() if item.paid < item.billed),
            key=lambda item: (item.due_day, item.loan_id, item.number),
        )
        reached = {key: n for key, n in state.milestones.items() if key in state.installments}
        state.milestones = reached  # a new dict: see ``Rule``
        for item in due_items:
            item_key = installment_key(item.loan_id, item.number)
            while reached.get(item_key, 0) < len(milestones):
                days = milestones[reached.get(item_key, 0)]
                if day_start_us(item.due_day + days) > at:
                    break
                reached[item_key] = reached.get(item_key, 0) + 1
                key = f"{item.loan_id}#{item.number}@{days}"
                if days in params.flag_milestones:
                    evidence = installment_evidence(item, at)
                    step.raise_flag("OVERDUE", evidence, key, overdue_days=days)
                if days == params.days and CODE not in state.episodes:
                    truth = self.truth_at(state, rules, at)
                    if truth is not None:
                        set_episode(state, CODE, FAR_FUTURE)
                        step.raise_flag(CODE, truth.evidence, key)

    def held_at(
        self, state: UserState, rules: Compiled, deadline: int, event: Event, at: int
    ) -> bool:
        """Some installment seriously overdue by ``deadline`` was still unpaid at it."""
        days = rules.params[CODE].days
        serious = [
            key
            for key, item in state.installments.items()
            if day_start_us(item.due_day + days) <= deadline
        ]
        serious += [
            key
            for key, (_, due_day) in state.paid_installments.items()
            if due_day >= 0 and day_start_us(due_day + days) <= deadline
        ]
        return any(unpaid_at(state, key, deadline) for key in serious)

    def message(self, evidence: dict[str, Any]) -> str:
        first = (evidence.get("installments") or [{}])[0]
        product = _PRODUCT_NAMES.get(str(first.get("product")), "credit product")
        return self.close_text.format(product=product, days=evidence.get("threshold_days", 30))


RULE = SeriousOverdue()
