"""The registry: every rule of the policy, in reason-code order.

Adding a rule: a module in this package named after its reason code in lower case, with a
``RULE`` (see ``base.Rule``); the code in ``schemas.outputs.RuleCode``, the one list of
codes (the contracts do not import the core: the registry reads it); its section in
``workers/policy/default.toml``. docs/policy.md has a worked example. The policy's
sections, compiled parameters, messages, the standing and time-triggered sets and the
status API all derive from this list.
"""

from __future__ import annotations

from importlib import import_module

from schemas.events import EVENT_TYPES
from schemas.outputs import REASON_CODES
from workers.core.rules.base import AnyRule, Rule, RuleConfig, Truth

RULES: tuple[AnyRule, ...] = tuple(
    import_module(f"{__name__}.{code.lower()}").RULE for code in REASON_CODES
)
"""Each reason code's ``RULE``, from the module named after it in lower case, in the order of
``RuleCode``: the order of a closure's reasons."""

BY_CODE: dict[str, AnyRule] = {rule.code: rule for rule in RULES}

STANDING: tuple[AnyRule, ...] = tuple(rule for rule in RULES if rule.standing)
"""Conditions that can be true at any instant (a time-triggered one such as INACTIVITY
may only ever be true at its deadline)."""

TIME_TRIGGERED: tuple[AnyRule, ...] = tuple(rule for rule in RULES if rule.time_triggered)
TIME_TRIGGERED_CODES = frozenset(rule.code for rule in TIME_TRIGGERED if rule.deadline_raises)
"""Reason codes raised by a deadline firing, which a late event can prove wrong."""

LISTENERS: dict[str, tuple[AnyRule, ...]] = {
    event_type: tuple(rule for rule in RULES if event_type in rule.events)
    for event_type in EVENT_TYPES
}
"""Event type -> the rules whose ``on_event`` it calls, in registry order."""

OBSERVERS: dict[str, tuple[AnyRule, ...]] = {
    event_type: tuple(rule for rule in listeners if rule.facts)
    for event_type, listeners in LISTENERS.items()
}
"""Event type -> the rules whose ``observe`` records its facts, in registry order."""

ON_SETTLEMENT: tuple[AnyRule, ...] = tuple(
    rule for rule in RULES if type(rule).on_settlement is not Rule.on_settlement
)

__all__ = [
    "BY_CODE",
    "LISTENERS",
    "OBSERVERS",
    "ON_SETTLEMENT",
    "RULES",
    "STANDING",
    "TIME_TRIGGERED",
    "TIME_TRIGGERED_CODES",
    "AnyRule",
    "Rule",
    "RuleConfig",
    "Truth",
]
