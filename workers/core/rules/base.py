"""What a rule is: one risk condition of the policy, owned by one module.

A rule owns its policy section (a pydantic model, ``config_model``), the integer
parameters compiled from it (``compile``), the facts it keeps of the user (``facts``: its
own devices, cards, outflows; updated by ``observe``, kept as long as ``retain`` says), its
slice of the policy's decision state (``state_fields``), how an event updates that slice
(``on_event`` for the event types in ``events``; every fact of the event, the shared ones
such as loans, installments and scores too, is recorded before any ``on_event``), when its
condition holds (``truth_at``), its evidence, and the sentence a customer-service agent
reads out (``message``). A *standing* rule's condition can be true at any instant (it is a
reason of a closure, blocks a restore and shows in the status API); a *time-triggered* rule
is raised by a deadline firing (``deadline`` and ``on_deadline``), which a late event can
prove wrong (``held_at``, see ``corrections``).

The registry (``workers.core.rules``) lists the rules in reason-code order; the policy's
sections, the compiled parameters, the messages and the status API derive from it.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from workers.core.state import MAX_CYCLE_ITEMS
from workers.core.timeutil import DAY, HOUR

if TYPE_CHECKING:
    from collections.abc import Callable

    from schemas.events import Event
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import Loan, UserState

Action = Literal["close_line", "flag", "off"]

FAR_FUTURE = 1 << 62


class Section(BaseModel):
    """A section of the policy file: frozen, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleConfig(Section):
    """A rule's policy section: its ``action`` and its thresholds."""

    action: Action = "close_line"


@dataclass(frozen=True, slots=True)
class Truth:
    """A condition that holds: until when if nothing else happens, and the evidence."""

    until: int
    evidence: dict[str, Any]


ConfigT = TypeVar("ConfigT", bound=RuleConfig)
ParamsT = TypeVar("ParamsT")


class Rule(Generic[ConfigT, ParamsT]):
    """One rule. Subclasses set the class attributes and override the hooks they need."""

    code: ClassVar[str]
    """The reason code (a member of ``schemas.outputs.RuleCode``)."""
    config_model: type[ConfigT]
    """The policy section's model; its defaults are the default policy's."""
    describes: ClassVar[str]
    """What the code stands for, as a phrase ("a low credit score")."""
    close_text: ClassVar[str]
    """The closure's sentence for the customer (``message`` fills it in)."""
    standing: ClassVar[bool] = False
    time_triggered: ClassVar[bool] = False
    deadline_raises: ClassVar[bool] = True
    """For a time-triggered rule: whether its deadline raises its flag, which a late event
    can prove wrong (False: its deadline only ends something, as overrides' expiry does)."""
    deadline_needs: ClassVar[str | None] = None
    """For a time-triggered rule: a collection field of ``UserState`` that is never empty
    while the rule has a deadline, so that ``schedule`` (after every event) need not ask
    ``deadline`` while it is empty. None: always ask."""
    events: ClassVar[frozenset[str]] = frozenset()
    """The event types ``on_event`` is called for."""
    facts: ClassVar[tuple[str, ...]] = ()
    """The fields of ``Facts`` that only this rule keeps (``observe`` records them); any
    policy's rule may read them."""
    state_fields: ClassVar[tuple[str, ...]] = ()
    """The decision fields of ``UserState`` that only this rule reads and writes."""
    also_writes: ClassVar[tuple[str, ...]] = ()
    """Other fields its hooks change (besides ``episodes`` and the line's lifecycle, which
    every rule may change through ``Step``). ``decide`` saves what an event may change, so
    that a failure leaves the state as it was: a hook must not change anything else, and it
    replaces a record of a shared collection rather than changing it in place. Episodes
    change through ``set_episode`` and ``end_episode`` only."""

    @property
    def writes(self) -> tuple[str, ...]:
        """The fields of ``UserState`` the rule's hooks may change."""
        return (*self.facts, *self.state_fields, *self.also_writes)

    @property
    def section(self) -> str:
        """The policy file's section: the code in lower case."""
        return self.code.lower()

    def compile(self, config: ConfigT) -> ParamsT:
        """The section's thresholds as the integers the hooks use (computed once a policy)."""
        raise NotImplementedError

    def retain(self, params: list[ParamsT]) -> ParamsT:
        """Parameters that keep the rule's facts long enough for every one of ``params``
        (the policies sharing the facts): ``observe`` reads only these."""
        return params[0]

    def observe(self, step: Step, event: Event) -> None:
        """Record the event's facts in the rule's ``facts`` (for an event of a type in
        ``events``), pruned by ``step.rules``' parameters: those ``retain`` gave when several
        policies share the facts. Never raises a flag: ``on_event`` judges."""

    def on_event(self, step: Step, event: Event) -> None:
        """Update the rule's decision state for an event of a type in ``events``, once every
        fact of the event is recorded."""

    def on_settlement(self, step: Step, loan: Loan, settled_at: int) -> None:
        """A loan was settled (whichever of its drawdown and settlement arrived last)."""

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        """Whether the condition holds at ``at`` (standing rules)."""
        return None

    def deadline(self, state: UserState, rules: Compiled) -> int | None:
        """The next instant a deadline of this rule falls due (time-triggered rules)."""
        return None

    def on_deadline(self, step: Step) -> None:
        """Fire what falls due at ``step.at`` (time-triggered rules)."""

    def held_at(
        self, state: UserState, rules: Compiled, deadline: int, event: Event, at: int
    ) -> bool:
        """Whether a flag this rule raised at ``deadline`` still holds once the late
        ``event`` (dated ``at``, already applied) is known."""
        return True

    def message(self, evidence: dict[str, Any]) -> str:
        """The customer's sentence for a closure with this evidence."""
        return self.close_text


AnyRule = Rule[Any, Any]


# Helpers shared by the rules' evidence and windows.


def window_text(micros: int) -> str:
    if micros % DAY == 0:
        return f"{micros // DAY}d"
    if micros % HOUR == 0:
        return f"{micros // HOUR}h"
    return f"{micros / HOUR:g}h"


def count_episode(
    items: list[tuple[int, str]], at: int, window: int, threshold: int
) -> tuple[int, list[tuple[int, str]]] | None:
    """Items in [at - window, at]; true while at least ``threshold`` remain in the window."""
    inside = sorted((item for item in items if at - window <= item[0] <= at), reverse=True)
    if len(inside) < threshold:
        return None
    return inside[threshold - 1][0] + window, inside


def counted_truth(
    items: list[tuple[int, str]],
    at: int,
    window: int,
    threshold: int,
    counted: str,
    details: Callable[[list[tuple[int, str]]], dict[str, Any]],
) -> Truth | None:
    """The truth of "at least ``threshold`` items within ``window``" at ``at``: the evidence
    names the window, how many items it holds (as ``counted``), the threshold, then the
    rule's ``details`` of the items inside."""
    found = count_episode(items, at, window, threshold)
    if found is None:
        return None
    until, inside = found
    evidence = {"window": window_text(window), counted: len(inside), "threshold": threshold}
    return Truth(until, {**evidence, **details(inside)})


def raise_windowed(
    step: Step,
    code: str,
    truth_at: Callable[[UserState, Compiled, int], Truth | None],
    later: list[int],
) -> None:
    """Raise ``code`` when its windowed condition becomes true at the event or, for an
    out-of-order event, at a later item whose window the event now fills."""
    state = step.state
    current = state.episodes.get(code)
    moments = [step.at, *sorted(t for t in later if t > step.at)] if later else [step.at]
    for moment in moments:
        truth = truth_at(state, step.rules, moment)
        if truth is None:
            continue
        if current is not None and moment <= current:
            set_episode(state, code, max(current, truth.until))
            return
        set_episode(state, code, truth.until)
        step.raise_flag(code, truth.evidence, at=moment)
        return


def set_episode(state: UserState, code: str, until: int) -> None:
    """Record that ``code``'s condition holds until ``until`` (a new dict: see ``Rule``)."""
    state.episodes = {**state.episodes, code: until}


def end_episode(state: UserState, code: str) -> None:
    state.episodes = {key: value for key, value in state.episodes.items() if key != code}


def add_timed_item(
    step: Step, what: str, items: list[tuple[int, str]], at: int, label: str, window: int
) -> list[tuple[int, str]]:
    """``items`` within ``window`` of the user's latest event, with ``(at, label)`` added."""
    horizon = (step.state.last_at or at) - window
    kept = [item for item in items if item[0] >= horizon]
    insort(kept, (at, label))
    if len(kept) > MAX_CYCLE_ITEMS:
        step.dropped(what, len(kept) - MAX_CYCLE_ITEMS)
    return kept[-MAX_CYCLE_ITEMS:]
