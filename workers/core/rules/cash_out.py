"""CASH_OUT: within a window after a loan drawdown, outflows to freshly bound cards add up
to most of the drawn amount."""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from workers.core.money import fen, yuan
from workers.core.rules.base import Rule, RuleConfig, Truth, window_text
from workers.core.state import MAX_BINDS_PER_CARD, MAX_CARDS, MAX_OUTFLOWS, Loan, Outflow
from workers.core.timeutil import days, hours, iso

if TYPE_CHECKING:
    from schemas.events import Event
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import UserState

CODE = "CASH_OUT"


class CashOutConfig(RuleConfig):
    window_hours: float = Field(24, gt=0, le=24 * 30)
    card_bound_within_days: float = Field(7, gt=0, le=365)
    min_outflow_ratio: float = Field(0.8, gt=0, le=1)


@dataclass(frozen=True, slots=True)
class Params:
    window: int
    card_window: int
    ratio: float


class CashOut(Rule[CashOutConfig, Params]):
    code = CODE
    config_model = CashOutConfig
    describes = "borrowed money moved to a new card"
    close_text = (
        "Money borrowed on your credit line was moved to a newly added bank card right after "
        "it was drawn, so your credit line has been closed."
    )
    standing = True
    events = frozenset({"bank_card_change", "transaction"})
    facts = ("card_binds", "outflows")
    state_fields = ("cash_outs",)

    def compile(self, config: CashOutConfig) -> Params:
        return Params(
            window=hours(config.window_hours),
            card_window=days(config.card_bound_within_days),
            ratio=config.min_outflow_ratio,
        )

    def retain(self, params: list[Params]) -> Params:
        return Params(
            window=max(p.window for p in params),
            card_window=max(p.card_window for p in params),
            ratio=0.0,
        )

    def observe(self, step: Step, event: Event) -> None:
        state, at = step.state, step.at
        params: Params = step.rules.params[CODE]
        if event.type == "bank_card_change":
            if event.action == "bind":
                self._bind(step, params, event.card_id)
        elif (
            event.type == "transaction"
            and event.kind in ("transfer_out", "withdrawal")
            and event.card_id is not None
        ):
            horizon = (state.last_at or at) - 2 * params.window
            state.outflows = [o for o in state.outflows if o.at >= horizon]
            state.outflows.append(Outflow(at, fen(event.amount), event.card_id, event.event_id))
            if len(state.outflows) > MAX_OUTFLOWS:
                step.dropped("outflows", len(state.outflows) - MAX_OUTFLOWS)
                del state.outflows[:-MAX_OUTFLOWS]

    def on_event(self, step: Step, event: Event) -> None:
        state, at = step.state, step.at
        params: Params = step.rules.params[CODE]
        if event.type == "bank_card_change":
            if event.action == "bind":
                # A bind that arrives late can complete a cash-out already under way.
                horizon = (state.last_at or at) - params.card_window - 2 * params.window
                self._check(
                    step, [loan for loan in state.loans.values() if loan.drawn_at >= horizon]
                )
        elif event.type == "transaction":
            if event.kind == "loan_drawdown" and event.loan_id is not None:
                loan = state.loans.get(event.loan_id)  # absent when already settled
                if loan is not None:
                    self._check(step, [loan])
            elif event.kind in ("transfer_out", "withdrawal") and event.card_id is not None:
                self._check(
                    step,
                    [
                        loan
                        for loan in state.loans.values()
                        if loan.drawn_at <= at <= loan.drawn_at + params.window
                    ],
                )

    def _bind(self, step: Step, params: Params, card_id: str) -> None:
        state, at = step.state, step.at
        horizon = (state.last_at or at) - params.card_window - 2 * params.window
        binds = [t for t in state.card_binds.get(card_id, []) if t >= horizon]
        insort(binds, at)
        if len(binds) > MAX_BINDS_PER_CARD:
            step.dropped("card_binds", len(binds) - MAX_BINDS_PER_CARD)
        cards = state.card_binds.copy()  # a new dict, never changed in place (``FieldSaver``)
        cards[card_id] = binds[-MAX_BINDS_PER_CARD:]
        for card in [c for c, times in cards.items() if not times or times[-1] < horizon]:
            del cards[card]
        while len(cards) > MAX_CARDS:
            oldest = min(cards, key=lambda c: cards[c][-1])
            step.dropped("cards")
            del cards[oldest]
        state.card_binds = cards

    def _check(self, step: Step, loans: list[Loan]) -> None:
        state = step.state
        for loan in loans:
            if loan.event_id in state.cash_outs:
                continue
            found = self.for_loan(state, step.rules, loan)
            if found is not None:
                evidence, completed_at = found
                drawn = {known.event_id for known in state.loans.values()}
                state.cash_outs = [
                    *(event_id for event_id in state.cash_outs if event_id in drawn),
                    loan.event_id,
                ]
                # When the outflows, in time order, reached the ratio: the same whichever of
                # the drawdown, the binds and the outflows arrived last.
                step.raise_flag(CODE, evidence, loan.loan_id, at=max(step.at, completed_at))

    def for_loan(
        self, state: UserState, rules: Compiled, loan: Loan
    ) -> tuple[dict[str, Any], int] | None:
        """The condition for one drawdown: outflows to freshly bound cards within its
        window; the evidence, and when (in time order) the outflows reached the ratio."""
        params: Params = rules.params[CODE]
        end = loan.drawn_at + params.window
        hits = []
        for outflow in state.outflows:
            if not loan.drawn_at <= outflow.at <= end:
                continue
            binds = state.card_binds.get(outflow.card_id, [])
            fresh = [b for b in binds if outflow.at - params.card_window <= b <= outflow.at]
            if fresh:
                hits.append((outflow, max(fresh)))
        total = sum(outflow.amount for outflow, _ in hits)
        if not hits or total < params.ratio * loan.amount:
            return None
        hits.sort(key=lambda hit: hit[0].at)
        running, completed_at = 0, hits[-1][0].at
        for outflow, _ in hits:
            running += outflow.amount
            if running >= params.ratio * loan.amount:
                completed_at = outflow.at
                break
        evidence = {
            "loan_id": loan.loan_id,
            "drawdown_event_id": loan.event_id,
            "drawn_amount": yuan(loan.amount),
            "outflow_amount": yuan(total),
            "ratio": round(total / loan.amount, 4),
            "threshold_ratio": params.ratio,
            "window": window_text(params.window),
            "outflows": [
                {
                    "event_id": outflow.event_id,
                    "amount": yuan(outflow.amount),
                    "card_id": outflow.card_id,
                    "card_bound_at": iso(bound_at),
                }
                for outflow, bound_at in hits
            ],
        }
        return evidence, completed_at

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        """As a standing condition: a flagged drawdown whose window holds ``at``."""
        window: int = rules.params[CODE].window
        if not state.cash_outs:
            return None
        for loan in state.loans.values():
            if loan.event_id in state.cash_outs and loan.drawn_at <= at <= loan.drawn_at + window:
                found = self.for_loan(state, rules, loan)
                if found is not None:
                    return Truth(loan.drawn_at + window, found[0])
        return None


RULE = CashOut()
