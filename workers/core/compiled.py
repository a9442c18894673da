"""A policy turned into integer microsecond windows, computed once per policy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from schemas.outputs import PolicyRole
from workers.core.policy import Policy
from workers.core.rules import RULES
from workers.core.timeutil import SECOND, days


@dataclass(frozen=True, slots=True)
class Compiled:
    policy: Policy
    version: str
    role: PolicyRole
    """The policy's role (``live`` or ``challenger``): the ``policy_role`` of its outputs."""
    close_codes: frozenset[str]
    active_codes: frozenset[str]
    params: dict[str, Any]
    """Reason code -> the rule's compiled parameters (``Rule.compile`` of its section)."""
    cooling: int
    severe_cooling: int
    severe_codes: frozenset[str]
    recent_login: int
    restore_min_score: int
    dedupe_window: int
    dedupe_max: int
    grace: int


@lru_cache(maxsize=32)
def compile_policy(policy: Policy, role: PolicyRole = "live") -> Compiled:
    return Compiled(
        policy=policy,
        version=policy.version,
        role=role,
        close_codes=frozenset(r.code for r in RULES if policy.action(r.code) == "close_line"),
        active_codes=frozenset(r.code for r in RULES if policy.action(r.code) != "off"),
        params={rule.code: rule.compile(policy.rule(rule.code)) for rule in RULES},
        cooling=days(policy.restore.cooling_days),
        severe_cooling=days(policy.restore.severe_cooling_days),
        severe_codes=frozenset(policy.restore.severe_reasons),
        recent_login=days(policy.restore.recent_login_days),
        restore_min_score=policy.restore.min_credit_score,
        dedupe_window=days(policy.memory.dedupe_days),
        dedupe_max=policy.memory.dedupe_max_ids,
        grace=policy.time.grace_seconds * SECOND,
    )
