"""The decision fold: ``decide(state, event, rules) -> (state, outputs, duplicate)``.

Pure and deterministic: time comes from the event, never from a clock. The state passed in
is owned by the fold and updated in place (callers that need the old state keep a
serialised copy). Deadlines are not fired here: the caller fires every deadline at or
before the event's ``occurred_at`` first (see ``engine.Engine``).
"""

from __future__ import annotations

from bisect import insort
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from schemas.events import (
    BankCardChange,
    DeviceChange,
    Event,
    Login,
    ProfileChange,
    Repayment,
    Transaction,
)
from schemas.outputs import Output
from workers.core import signals
from workers.core.compiled import Compiled
from workers.core.lifecycle import Step, schedule
from workers.core.state import (
    MAX_BINDS_PER_CARD,
    MAX_CARDS,
    MAX_CHURN_ITEMS,
    MAX_CYCLE_ITEMS,
    MAX_DEVICES,
    MAX_INSTALLMENTS,
    MAX_LOANS,
    MAX_OUTFLOWS,
    MAX_PAID_INSTALLMENTS,
    MAX_PAYMENTS,
    MAX_SCORES,
    MAX_SETTLED,
    MAX_USES_PER_DEVICE,
    Installment,
    Loan,
    Outflow,
    UserState,
    installment_key,
)
from workers.core.timeutil import add_months_us, day_number, to_us


def fen(amount: Decimal) -> int:
    return int(amount * 100)


def decide(
    state: UserState,
    event: Event,
    rules: Compiled,
    at: int | None = None,
    drops: Counter[str] | None = None,
) -> tuple[UserState, list[Output], bool]:
    """Apply one event to one user's state; the third value is True for a duplicate.

    ``at`` is the event's ``occurred_at`` in microseconds, when the caller has it already.
    ``drops`` counts what the state's size caps forced out (by what), when given.
    """
    if at is None:
        at = to_us(event.occurred_at)
    key = event.event_id
    if key in state.seen:
        return state, [], True
    step = Step(state, rules, event.user_id, at, event.event_id, drops)
    _remember(step, key)
    _HANDLERS[event.type](step, event)
    step.finish()
    schedule(state, rules)
    return state, step.outputs, False


def _remember(step: Step, key: str) -> None:
    state, rules, at = step.state, step.rules, step.at
    state.first_at = at if state.first_at is None else min(state.first_at, at)
    state.last_at = at if state.last_at is None else max(state.last_at, at)
    seen = state.seen
    seen[key] = at
    if len(seen) & 31 and len(seen) <= rules.dedupe_max:
        return  # prune in batches: at least the window is always remembered
    horizon = state.last_at - rules.dedupe_window
    while len(seen) > rules.dedupe_max:
        oldest = next(iter(seen))
        if seen[oldest] >= horizon:
            step.dropped("event_ids")  # still inside the dedupe window
        del seen[oldest]
    while seen:
        oldest = next(iter(seen))
        if seen[oldest] >= horizon:
            break
        del seen[oldest]


def _windowed(step: Step, signal: str, truth_fn: signals.TruthFn, later: list[int]) -> None:
    """Raise ``signal`` when its windowed condition becomes true at the event or, for an
    out-of-order event, at a later item whose window the event now fills."""
    state = step.state
    current = state.episodes.get(signal)
    moments = [step.at, *sorted(t for t in later if t > step.at)] if later else [step.at]
    for moment in moments:
        truth = truth_fn(state, step.rules, moment)
        if truth is None:
            continue
        if current is not None and moment <= current:
            state.episodes[signal] = max(current, truth.until)
            return
        state.episodes[signal] = truth.until
        step.raise_flag(signal, truth.evidence, at=moment)
        return


def _use_device(step: Step, device_id: str) -> None:
    state, rules, at = step.state, step.rules, step.at
    last_at = state.last_at if state.last_at is not None else at
    horizon = last_at - rules.device_keep
    uses = state.devices.get(device_id)
    if uses is None:
        uses = state.devices[device_id] = []
    insort(uses, at)
    kept = [t for t in uses if t >= horizon] if uses[0] < horizon else uses
    # A use between two others of the same device no further apart than the shortest
    # window can never change a distinct-device count: any window holding it holds one of them.
    index = 1
    while index < len(kept) - 1:
        if kept[index + 1] - kept[index - 1] <= rules.device_min_window:
            del kept[index]
        else:
            index += 1
    if kept:
        if len(kept) > MAX_USES_PER_DEVICE:
            step.dropped("device_uses", len(kept) - MAX_USES_PER_DEVICE)
        state.devices[device_id] = kept[-MAX_USES_PER_DEVICE:]
    else:
        del state.devices[device_id]  # a use older than every window still kept
    if len(state.devices) > 1:
        for device in [d for d, times in state.devices.items() if times[-1] < horizon]:
            del state.devices[device]
    if len(state.devices) > MAX_DEVICES:
        by_recency = sorted(state.devices, key=lambda d: state.devices[d][-1])
        step.dropped("devices", len(state.devices) - MAX_DEVICES)
        for device in by_recency[: len(state.devices) - MAX_DEVICES]:
            del state.devices[device]
    if len(state.devices) < rules.device_min_threshold:
        return  # too few devices for any window to reach its threshold
    later = (
        [t for times in state.devices.values() for t in times if at < t <= at + rules.device_keep]
        if at < last_at
        else []
    )
    _windowed(step, "DEVICE_SWITCHING", signals.devices_at, later)


def _churn(step: Step, what: str, event_id: str) -> None:
    state, rules, at = step.state, step.rules, step.at
    horizon = (state.last_at or at) - rules.churn_window
    state.churn = [item for item in state.churn if item[0] >= horizon]
    insort(state.churn, (at, event_id, what))
    if len(state.churn) > MAX_CHURN_ITEMS:
        step.dropped("churn_changes", len(state.churn) - MAX_CHURN_ITEMS)
        del state.churn[:-MAX_CHURN_ITEMS]
    later = [t for t, _, _ in state.churn if at < t <= at + rules.churn_window]
    _windowed(step, "ACCOUNT_INFO_CHURN", signals.churn_at, later)


def _check_cash_out(step: Step, loans: list[Loan]) -> None:
    for loan in loans:
        if loan.cash_out_flagged:
            continue
        found = signals.cash_out_for(step.state, step.rules, loan)
        if found is not None:
            evidence, completed_at = found
            loan.cash_out_flagged = True
            # When the outflows, in time order, reached the ratio: the same whichever of
            # the drawdown, the binds and the outflows arrived last.
            step.raise_flag("CASH_OUT", evidence, loan.loan_id, at=max(step.at, completed_at))


def _loans_covering(state: UserState, rules: Compiled, at: int) -> list[Loan]:
    return [
        loan
        for loan in state.loans.values()
        if loan.drawn_at <= at <= loan.drawn_at + rules.cash_window
    ]


def on_login(step: Step, event: Login) -> None:
    if not event.success:
        return
    state = step.state
    state.last_login_at = max(state.last_login_at or step.at, step.at)
    _use_device(step, event.device_id)


def on_device_change(step: Step, event: DeviceChange) -> None:
    _use_device(step, event.device_id)


def on_bank_card_change(step: Step, event: BankCardChange) -> None:
    state, rules, at = step.state, step.rules, step.at
    if event.action == "bind":
        horizon = (state.last_at or at) - rules.card_window - 2 * rules.cash_window
        binds = [t for t in state.card_binds.get(event.card_id, []) if t >= horizon]
        insort(binds, at)
        if len(binds) > MAX_BINDS_PER_CARD:
            step.dropped("card_binds", len(binds) - MAX_BINDS_PER_CARD)
        state.card_binds[event.card_id] = binds[-MAX_BINDS_PER_CARD:]
        for card in [
            c for c, times in state.card_binds.items() if not times or times[-1] < horizon
        ]:
            del state.card_binds[card]
        while len(state.card_binds) > MAX_CARDS:
            oldest = min(state.card_binds, key=lambda c: state.card_binds[c][-1])
            step.dropped("cards")
            del state.card_binds[oldest]
        # A bind that arrives late can complete a cash-out already under way.
        _check_cash_out(step, [loan for loan in state.loans.values() if loan.drawn_at >= horizon])
    _churn(step, f"card_{event.action}", event.event_id)


def on_profile_change(step: Step, event: ProfileChange) -> None:
    state, rules, at = step.state, step.rules, step.at
    if event.field in rules.churn_fields:
        _churn(step, event.field, event.event_id)
    if event.field != "credit_score" or event.credit_score is None:
        return
    insort(state.scores, [at, event.credit_score])
    del state.scores[:-MAX_SCORES]
    state.score_at, state.score = state.scores[-1]  # the latest by occurred_at
    # The score becomes low whenever one under the minimum follows one at or above it (or
    # none): in time order, whatever order the scores arrived in.
    raised = state.episodes.get("LOW_CREDIT_SCORE")
    previous_low = False
    for scored_at, value in state.scores:
        low = value < rules.min_score
        if low and not previous_low and scored_at >= at and (raised is None or scored_at > raised):
            state.episodes["LOW_CREDIT_SCORE"] = raised = scored_at
            evidence = signals.score_evidence(rules, value, scored_at)
            step.raise_flag("LOW_CREDIT_SCORE", evidence, at=scored_at)
        previous_low = low


def on_transaction(step: Step, event: Transaction) -> None:
    state, rules, at = step.state, step.rules, step.at
    if event.kind == "loan_drawdown" and event.loan_id is not None:
        state.last_drawdown_at = max(state.last_drawdown_at or at, at)
        term = event.term_months or 1
        loan = Loan(
            event.loan_id,
            at,
            fen(event.amount),
            term,
            event.product,
            event.event_id,
            add_months_us(at, term),
        )
        settled_at = state.settled.get(event.loan_id)
        if settled_at is not None:
            _classify_settlement(step, loan, settled_at)
            return
        if event.loan_id not in state.loans:
            state.loans[event.loan_id] = loan
            _prune_loans(step)
        if event.loan_id in state.loans:
            _check_cash_out(step, [state.loans[event.loan_id]])
    elif event.kind in ("transfer_out", "withdrawal") and event.card_id is not None:
        horizon = (state.last_at or at) - 2 * rules.cash_window
        state.outflows = [o for o in state.outflows if o.at >= horizon]
        state.outflows.append(Outflow(at, fen(event.amount), event.card_id, event.event_id))
        if len(state.outflows) > MAX_OUTFLOWS:
            step.dropped("outflows", len(state.outflows) - MAX_OUTFLOWS)
            del state.outflows[:-MAX_OUTFLOWS]
        _check_cash_out(step, _loans_covering(state, rules, at))


def _prune_loans(step: Step) -> None:
    """Forget loans past their final due date (settling them can no longer be early)."""
    state, rules = step.state, step.rules
    now = state.last_at or 0
    for loan_id in [
        loan_id for loan_id, loan in state.loans.items() if loan.final_due < now - rules.cash_window
    ]:
        del state.loans[loan_id]
    while len(state.loans) > MAX_LOANS:
        oldest = min(state.loans, key=lambda loan_id: state.loans[loan_id].drawn_at)
        step.dropped("loans")
        del state.loans[oldest]


def _classify_settlement(step: Step, loan: Loan, settled_at: int) -> None:
    """A quick cycle (settled within 48 h) or an early settlement (later, before final due)."""
    state, rules = step.state, step.rules
    held = settled_at - loan.drawn_at
    if 0 <= held <= rules.quick_cycle:
        state.quick_cycles = _add_item(
            step, "quick_cycles", state.quick_cycles, settled_at, loan.loan_id, rules.swipe_window
        )
        later = [t for t, _ in state.quick_cycles]
        _windowed(step, "SCORE_SWIPING", signals.swiping_at, later)
    elif held > rules.early_after and settled_at < loan.final_due:
        state.early_settlements = _add_item(
            step,
            "early_settlements",
            state.early_settlements,
            settled_at,
            loan.loan_id,
            rules.early_window,
        )
        later = [t for t, _ in state.early_settlements]
        _windowed(step, "FREQUENT_EARLY_REPAYMENT", signals.early_at, later)


def _add_item(
    step: Step, what: str, items: list[tuple[int, str]], at: int, label: str, window: int
) -> list[tuple[int, str]]:
    horizon = (step.state.last_at or at) - window
    kept = [item for item in items if item[0] >= horizon]
    insort(kept, (at, label))
    if len(kept) > MAX_CYCLE_ITEMS:
        step.dropped(what, len(kept) - MAX_CYCLE_ITEMS)
    return kept[-MAX_CYCLE_ITEMS:]


def on_repayment(step: Step, event: Repayment) -> None:
    if event.kind == "installment_due":
        _bill(step, event)
    else:
        _pay(step, event)


def _bill(step: Step, event: Repayment) -> None:
    state, at = step.state, step.at
    assert event.installment is not None and event.due_date is not None
    key = installment_key(event.loan_id, event.installment)
    if key in state.installments or key in state.paid_installments:
        return
    due_day = day_number(event.due_date)
    settled_at = state.settled.get(event.loan_id)
    if settled_at is not None:
        _mark_paid(step, key, settled_at, due_day)
        return
    item = Installment(event.loan_id, event.installment, event.product, due_day, fen(event.amount))
    # Money paid before the bill: first what was attributed to this installment, then the
    # loan's unattributed credit. Either was paid before the bill: it counts from the bill.
    for credit_key in (key, event.loan_id):
        credit = state.credit.pop(credit_key, 0)
        used = min(credit, item.billed - item.paid)
        if used:
            item.paid += used
            item.payments.append([at, used])
        if credit > used:
            state.credit[credit_key] = credit - used
    if item.paid >= item.billed:
        _mark_paid(step, key, at, due_day)
    elif len(state.installments) < MAX_INSTALLMENTS:
        state.installments[key] = item
    else:
        step.dropped("installments")  # a bill not tracked can hide a serious overdue


def _mark_paid(step: Step, key: str, completed_at: int, due_day: int) -> None:
    paid = step.state.paid_installments
    paid[key] = [completed_at, due_day]
    while len(paid) > MAX_PAID_INSTALLMENTS:
        step.dropped("paid_installments")
        del paid[next(iter(paid))]


def _record_payment(item: Installment, at: int, amount: int) -> None:
    """Keep the money's time: when the bill was paid off decides late corrections."""
    insort(item.payments, [at, amount])
    if len(item.payments) > MAX_PAYMENTS:
        # Merge the two earliest at the later time: never earlier than the truth.
        first, second = item.payments[0], item.payments[1]
        item.payments[0:2] = [[second[0], first[1] + second[1]]]


def _not_billed_yet(state: UserState, event: Repayment) -> bool:
    key = installment_key(event.loan_id, event.installment or 0)
    return key not in state.installments and key not in state.paid_installments


def _add_credit(step: Step, key: str, amount: int) -> None:
    credit = step.state.credit
    credit[key] = credit.get(key, 0) + amount
    while len(credit) > MAX_SETTLED:
        step.dropped("credits")
        del credit[next(iter(credit))]


def _pay(step: Step, event: Repayment) -> None:
    state, at = step.state, step.at
    loan_items = sorted(
        (item for item in state.installments.values() if item.loan_id == event.loan_id),
        key=lambda item: item.number,
    )
    if event.settles_loan:
        for item in loan_items:
            if item.paid < item.billed:
                _record_payment(item, at, item.billed - item.paid)
                item.paid = item.billed
        state.credit.pop(event.loan_id, None)
    elif event.installment is not None and _not_billed_yet(state, event):
        # Attributed to an installment not billed yet: it pays that bill when it comes.
        key = installment_key(event.loan_id, event.installment)
        _add_credit(step, key, fen(event.amount))
    else:
        remaining = fen(event.amount)
        if event.installment is not None:
            loan_items.sort(key=lambda item: item.number != event.installment)
        for item in loan_items:
            paid = min(remaining, item.billed - item.paid)
            if paid > 0:
                item.paid += paid
                _record_payment(item, at, paid)
            remaining -= paid
            if remaining <= 0:
                break
        if remaining > 0:
            _add_credit(step, event.loan_id, remaining)
    cleared_overdue = False
    for item in loan_items:
        if item.paid >= item.billed:
            key = installment_key(item.loan_id, item.number)
            del state.installments[key]
            _mark_paid(step, key, signals.completed_at(item), item.due_day)
            cleared_overdue = cleared_overdue or signals.past_due_since(item) <= at
    if cleared_overdue:
        state.last_cleared_at = max(state.last_cleared_at or at, at)
        step.negative_signal()
    if "SERIOUS_OVERDUE" in state.episodes and signals.serious_at(state, step.rules, at) is None:
        del state.episodes["SERIOUS_OVERDUE"]
    if event.settles_loan:
        state.settled[event.loan_id] = at
        while len(state.settled) > MAX_SETTLED:
            step.dropped("settled_loans")
            del state.settled[next(iter(state.settled))]
        loan = state.loans.pop(event.loan_id, None)
        if loan is not None:
            _classify_settlement(step, loan, at)


_HANDLERS: dict[str, Callable[[Step, Any], None]] = {
    "login": on_login,
    "device_change": on_device_change,
    "bank_card_change": on_bank_card_change,
    "profile_change": on_profile_change,
    "transaction": on_transaction,
    "repayment": on_repayment,
}
