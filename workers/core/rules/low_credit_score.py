"""LOW_CREDIT_SCORE: the latest credit score is below the minimum."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from workers.core.rules.base import FAR_FUTURE, Rule, RuleConfig, Truth, set_episode
from workers.core.timeutil import iso

if TYPE_CHECKING:
    from schemas.events import Event
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import UserState

CODE = "LOW_CREDIT_SCORE"


class LowCreditScoreConfig(RuleConfig):
    min_score: int = Field(600, ge=350, le=950)


@dataclass(frozen=True, slots=True)
class Params:
    min_score: int


class LowCreditScore(Rule[LowCreditScoreConfig, Params]):
    code = CODE
    config_model = LowCreditScoreConfig
    describes = "a low credit score"
    close_text = (
        "Your credit score of {score} is below the {minimum} this credit line needs, "
        "so it has been closed."
    )
    standing = True
    events = frozenset({"profile_change"})

    def compile(self, config: LowCreditScoreConfig) -> Params:
        return Params(min_score=config.min_score)

    def on_event(self, step: Step, event: Event) -> None:
        """The score becomes low whenever one under the minimum follows one at or above it
        (or none): in time order, whatever order the scores arrived in. ``decide`` has put
        the event's score in the history already."""
        if event.type != "profile_change" or event.credit_score is None:
            return
        if event.field != "credit_score":
            return
        state, at = step.state, step.at
        min_score: int = step.rules.params[CODE].min_score
        raised = state.episodes.get(CODE)
        previous_low = False
        for scored_at, value in state.scores:
            low = value < min_score
            if (
                low
                and not previous_low
                and scored_at >= at
                and (raised is None or scored_at > raised)
            ):
                set_episode(state, CODE, scored_at)
                raised = scored_at
                step.raise_flag(CODE, self.evidence(min_score, value, scored_at), at=scored_at)
            previous_low = low

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        min_score: int = rules.params[CODE].min_score
        if state.score is None or state.score >= min_score:
            return None
        return Truth(FAR_FUTURE, self.evidence(min_score, state.score, state.score_at or at))

    def evidence(self, min_score: int, score: int, scored_at: int) -> dict[str, Any]:
        return {"credit_score": score, "min_score": min_score, "scored_at": iso(scored_at)}

    def message(self, evidence: dict[str, Any]) -> str:
        return self.close_text.format(
            score=evidence.get("credit_score"), minimum=evidence.get("min_score")
        )


RULE = LowCreditScore()
