"""The decision fold: ``decide(state, event, rules) -> (state, outputs, duplicate)``.

An event is taken in two parts. First its **facts** are recorded in the user's ``Facts``
(first and last times, seen ids, loans and settlements, installments and payments, logins,
credit scores; then each listening rule's own facts, ``Rule.observe``: devices, cards,
outflows). Facts hold no verdict; they are pruned by the policy's windows. Then the policy
**judges** (``_judge``): what the facts signalled (a past-due installment paid off, loans
settled), each rule listening to the event's type (``Rule.on_event``, in registry order)
updating its decision state and raising its flags, then the line's lifecycle closing the
line or granting eligibility, and the next deadline.

``decide_shared`` folds several policies over one user's facts: the facts recorded once
(kept for the longest window of any of them, ``retention``), each policy judging over them
into its own decision state, exactly as it would alone.

Pure and deterministic: time comes from the event, never from a clock. ``decide`` updates
the state passed in, in place, atomically per event: if it fails (a defect), the state is
exactly as it was before the event. It saves the fields an event of that type may change
(``WRITES``: the facts of its type, the facts and slices of the rules listening to it and
the line's lifecycle; collections as shallow copies, which is why a record in them is
replaced, never changed in place) and puts them back on failure. Deadlines are not fired
here: the caller fires every deadline at or before the event's ``occurred_at`` first (see
``engine.Engine``).
"""

from __future__ import annotations

from bisect import insort
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from schemas.events import (
    Event,
    Login,
    ProfileChange,
    Repayment,
    Transaction,
)
from schemas.outputs import Output
from workers.core.compiled import Compiled
from workers.core.installments import completed_at, past_due_since
from workers.core.lifecycle import WRITES as LIFECYCLE_WRITES
from workers.core.lifecycle import Step, schedule
from workers.core.money import fen
from workers.core.rules import LISTENERS, OBSERVERS, ON_SETTLEMENT, AnyRule
from workers.core.state import (
    MAX_INSTALLMENTS,
    MAX_LOANS,
    MAX_PAID_INSTALLMENTS,
    MAX_PAYMENTS,
    MAX_SCORES,
    MAX_SETTLED,
    FieldSaver,
    Installment,
    Loan,
    UserState,
    installment_key,
    share_facts,
)
from workers.core.timeutil import add_months_us, day_number, to_us


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
    saver, facts, observers, listeners = _PLANS[event.type]
    saved = saver.save(state)
    forgotten: list[tuple[str, int]] | None = None
    step = Step(state, rules, event.user_id, at, event.event_id, drops)
    try:
        # Kept inline, not calls to ``_remember`` and ``_judge`` (which ``decide_shared``
        # calls): a call costs several times more than most of this, and this is every event.
        # Remember the event: its time and id (comparisons, not ``min`` and ``max``).
        first_at, last_at = state.first_at, state.last_at
        if first_at is None or at < first_at:
            state.first_at = at
        if last_at is None or at > last_at:
            state.last_at = at
        seen = state.seen
        seen[key] = at
        if not len(seen) & 31 or len(seen) > rules.dedupe_max:
            forgotten = []
            _forget(step, forgotten)  # in batches: at least the window is always remembered
        if facts is not None:
            facts(step, event)
        for rule in observers:
            rule.observe(step, event)
        # Judge.
        if step.cleared:
            step.negative_signal()
        if step.settlements:
            for loan, settled_at in step.settlements:
                for rule in ON_SETTLEMENT:
                    rule.on_settlement(step, loan, settled_at)
        for rule in listeners:
            rule.on_event(step, event)
        if step.raised or state.awaiting_restore:
            step.finish()  # else it has nothing to do (no flag to close on, no restore due)
        schedule(state, rules)
    except BaseException:
        saver.restore(state, saved)
        _unremember(state, key, forgotten)
        raise
    return state, step.outputs, False


def _judge(step: Step, event: Event, listeners: tuple[AnyRule, ...]) -> None:
    """The policy's part, once the event's facts are recorded: what the facts signalled (a
    past-due installment paid off, loans settled), the listening rules, then the line's
    lifecycle and the next deadline (as ``decide`` does inline)."""
    if step.cleared:
        step.negative_signal()
    if step.settlements:
        for loan, settled_at in step.settlements:
            for rule in ON_SETTLEMENT:
                rule.on_settlement(step, loan, settled_at)
    for rule in listeners:
        rule.on_event(step, event)
    if step.raised or step.state.awaiting_restore:
        step.finish()
    schedule(step.state, step.rules)


def decide_shared(
    states: Sequence[UserState],
    event: Event,
    policies: Sequence[Compiled],
    keep: Compiled,
    at: int | None = None,
    drops: Counter[str] | None = None,
) -> tuple[list[list[Output]], bool]:
    """Apply one event to one user under several policies that share the user's facts:
    ``states[i]`` is the user's state under ``policies[i]``, and all of them hold the same
    fact objects (``share_facts``). The event's facts are recorded once, kept as long as
    ``keep`` says (``retention`` of the policies), then each policy judges it over them.
    Returns each policy's outputs, and whether the event was a duplicate.

    Atomic like ``decide``: if it fails, every state is as it was before the event."""
    if at is None:
        at = to_us(event.occurred_at)
    owner = states[0]
    key = event.event_id
    if key in owner.seen:
        return [[] for _ in states], True
    saver, facts, observers, listeners = _PLANS[event.type]
    saved = [saver.save(state) for state in states]
    forgotten: list[tuple[str, int]] = []
    outputs: list[list[Output]] = []
    try:
        recorded = Step(owner, keep, event.user_id, at, key, drops)
        _remember(recorded, key, forgotten)
        if facts is not None:
            facts(recorded, event)
        for rule in observers:
            rule.observe(recorded, event)
        for state, rules in zip(states, policies, strict=True):
            share_facts(owner, state)
            step = Step(state, rules, event.user_id, at, key, drops)
            step.settlements, step.cleared = recorded.settlements, recorded.cleared
            _judge(step, event, listeners)
            outputs.append(step.outputs)
    except BaseException:
        for state, values in zip(states, saved, strict=True):
            saver.restore(state, values)
        _unremember(owner, key, forgotten)
        for state in states:
            share_facts(owner, state)
        raise
    return outputs, False


def _remember(step: Step, key: str, forgotten: list[tuple[str, int]]) -> None:
    """Remember the event's time and id (as ``decide`` does inline); forget what is due."""
    state, at = step.state, step.at
    state.first_at = at if state.first_at is None else min(state.first_at, at)
    state.last_at = at if state.last_at is None else max(state.last_at, at)
    seen = state.seen
    seen[key] = at
    if not len(seen) & 31 or len(seen) > step.rules.dedupe_max:
        _forget(step, forgotten)


def _forget(step: Step, forgotten: list[tuple[str, int]]) -> None:
    """Forget the ids older than the dedupe window, and the oldest over the cap (into
    ``forgotten``, to be remembered again if the event fails)."""
    state, rules = step.state, step.rules
    seen = state.seen
    horizon = (state.last_at or 0) - rules.dedupe_window
    while len(seen) > rules.dedupe_max:
        oldest = next(iter(seen))
        if seen[oldest] >= horizon:
            step.dropped("event_ids")  # still inside the dedupe window
        forgotten.append((oldest, seen.pop(oldest)))
    while seen:
        oldest = next(iter(seen))
        if seen[oldest] >= horizon:
            break
        forgotten.append((oldest, seen.pop(oldest)))


def _unremember(state: UserState, key: str, forgotten: list[tuple[str, int]] | None) -> None:
    """Forget ``key`` again and remember what ``_forget`` forgot: the oldest ids, in order;
    ``key`` the newest."""
    state.seen.pop(key, None)
    if forgotten:
        seen = {oldest: at for oldest, at in forgotten if oldest != key}
        seen.update(state.seen)
        state.seen = seen


# The facts each event type adds to the user's state, before the rules listening to it
# update their own slices (``workers.core.rules``).


def on_login(step: Step, event: Login) -> None:
    if event.success:
        state, at = step.state, step.at
        last_login_at = state.last_login_at
        if not last_login_at or at > last_login_at:
            state.last_login_at = at


def on_profile_change(step: Step, event: ProfileChange) -> None:
    if event.field != "credit_score" or event.credit_score is None:
        return
    state = step.state
    insort(state.scores, [step.at, event.credit_score])
    del state.scores[:-MAX_SCORES]
    state.score_at, state.score = state.scores[-1]  # the latest by occurred_at


def on_transaction(step: Step, event: Transaction) -> None:
    state, at = step.state, step.at
    if event.kind == "loan_drawdown" and event.loan_id is not None:
        last_drawdown_at = state.last_drawdown_at
        if not last_drawdown_at or at > last_drawdown_at:
            state.last_drawdown_at = at
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
            _settled(step, loan, settled_at)
        elif event.loan_id not in state.loans:
            state.loans = state.loans.copy()  # a new dict: see ``REPLACED_NOT_CHANGED``
            state.loans[event.loan_id] = loan
            _prune_loans(step)


def _settled(step: Step, loan: Loan, settled_at: int) -> None:
    """A loan is settled: for the rules that judge settlements (quick cycles, early ones)."""
    if step.settlements is None:
        step.settlements = []
    step.settlements.append((loan, settled_at))


def _prune_loans(step: Step) -> None:
    """Forget loans past their final due date (settling them can no longer be early).
    Changes ``state.loans`` in place: the caller has just made it a new dict."""
    state = step.state
    now = state.last_at or 0
    keep = step.rules.params["CASH_OUT"].window  # a cash-out can complete until then
    for loan_id in [
        loan_id for loan_id, loan in state.loans.items() if loan.final_due < now - keep
    ]:
        del state.loans[loan_id]
    while len(state.loans) > MAX_LOANS:
        oldest = min(state.loans, key=lambda loan_id: state.loans[loan_id].drawn_at)
        step.dropped("loans")
        del state.loans[oldest]


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
    if key in state.credit or event.loan_id in state.credit:
        state.credit = state.credit.copy()  # a new dict: see ``REPLACED_NOT_CHANGED``
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
    paid = step.state.paid_installments.copy()  # a new dict: see ``REPLACED_NOT_CHANGED``
    paid[key] = [completed_at, due_day]
    while len(paid) > MAX_PAID_INSTALLMENTS:
        step.dropped("paid_installments")
        del paid[next(iter(paid))]
    step.state.paid_installments = paid


def _copy_installment(item: Installment) -> Installment:
    return Installment(
        item.loan_id,
        item.number,
        item.product,
        item.due_day,
        item.billed,
        item.paid,
        list(item.payments),
    )


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
    credit = step.state.credit.copy()  # a new dict: see ``REPLACED_NOT_CHANGED``
    credit[key] = credit.get(key, 0) + amount
    while len(credit) > MAX_SETTLED:
        step.dropped("credits")
        del credit[next(iter(credit))]
    step.state.credit = credit


def _pay(step: Step, event: Repayment) -> None:
    state, at = step.state, step.at
    loan_items = sorted(
        (item for item in state.installments.values() if item.loan_id == event.loan_id),
        key=lambda item: item.number,
    )
    for index, item in enumerate(loan_items):  # changed below: replaced, not changed in place
        loan_items[index] = state.installments[installment_key(item.loan_id, item.number)] = (
            _copy_installment(item)
        )
    if event.settles_loan:
        for item in loan_items:
            if item.paid < item.billed:
                _record_payment(item, at, item.billed - item.paid)
                item.paid = item.billed
        if event.loan_id in state.credit:
            state.credit = {k: v for k, v in state.credit.items() if k != event.loan_id}
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
            _mark_paid(step, key, completed_at(item), item.due_day)
            cleared_overdue = cleared_overdue or past_due_since(item) <= at
    if cleared_overdue:
        state.last_cleared_at = max(state.last_cleared_at or at, at)
        step.cleared = True
    if event.settles_loan:
        settled = state.settled.copy()  # new dicts: see ``REPLACED_NOT_CHANGED``
        settled[event.loan_id] = at
        while len(settled) > MAX_SETTLED:
            step.dropped("settled_loans")
            del settled[next(iter(settled))]
        state.settled = settled
        loan = state.loans.get(event.loan_id)
        if loan is not None:
            state.loans = {k: v for k, v in state.loans.items() if k != event.loan_id}
            _settled(step, loan, at)


_FACTS: dict[str, Callable[[Step, Any], None] | None] = {
    "login": on_login,
    "device_change": None,  # devices and cards are the rules' own slices of state
    "bank_card_change": None,
    "profile_change": on_profile_change,
    "transaction": on_transaction,
    "repayment": on_repayment,
}


_FACT_WRITES: dict[str, tuple[str, ...]] = {
    "login": ("last_login_at",),
    "device_change": (),
    "bank_card_change": (),
    "profile_change": ("scores", "score", "score_at"),
    "transaction": ("last_drawdown_at", "loans"),
    "repayment": (
        "installments",
        "paid_installments",
        "credit",
        "settled",
        "loans",
        "last_cleared_at",
    ),
}
"""The facts each event type may change, besides ``first_at``, ``last_at`` and ``seen``."""

_SETTLING = frozenset({"transaction", "repayment"})
"""The event types that can settle a loan (``_settled``)."""


def _writes(event_type: str) -> tuple[str, ...]:
    """The fields of ``UserState`` an event of this type may change (``seen`` aside)."""
    names = {"first_at", "last_at", *LIFECYCLE_WRITES, *_FACT_WRITES[event_type]}
    for rule in LISTENERS[event_type]:
        names.update(rule.writes)
    if event_type in _SETTLING:
        for rule in ON_SETTLEMENT:
            names.update(rule.writes)
    return tuple(sorted(names))


WRITES: dict[str, tuple[str, ...]] = {event_type: _writes(event_type) for event_type in _FACTS}
_SAVERS = {event_type: FieldSaver(names) for event_type, names in WRITES.items()}
_PLANS = {
    event_type: (_SAVERS[event_type], facts, OBSERVERS[event_type], LISTENERS[event_type])
    for event_type, facts in _FACTS.items()
}
"""Event type -> what ``decide`` runs for it: the saving, the facts (None: the type has
none), the rules recording their own facts, the listening rules."""
