"""A policy turned into integer microsecond windows, computed once per policy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from schemas.outputs import REASON_CODES
from workers.core.policy import Policy
from workers.core.timeutil import SECOND, days, hours


@dataclass(frozen=True, slots=True)
class Compiled:
    policy: Policy
    version: str
    close_codes: frozenset[str]
    active_codes: frozenset[str]
    milestones: tuple[int, ...]
    flag_milestones: frozenset[int]
    serious_days: int
    cash_window: int
    card_window: int
    cash_ratio: float
    quick_cycle: int
    swipe_window: int
    swipe_min: int
    early_after: int
    early_window: int
    early_min: int
    device_windows: tuple[tuple[int, int], ...]
    device_keep: int
    device_min_window: int
    device_min_threshold: int
    churn_window: int
    churn_min: int
    churn_fields: frozenset[str]
    inactivity: int
    min_score: int
    cooling: int
    severe_cooling: int
    severe_codes: frozenset[str]
    recent_login: int
    restore_min_score: int
    dedupe_window: int
    dedupe_max: int
    grace: int


@lru_cache(maxsize=32)
def compile_policy(policy: Policy) -> Compiled:
    serious = policy.serious_overdue
    device_windows = tuple(
        (hours(w.hours), w.min_distinct_devices) for w in policy.device_switching.windows
    )
    return Compiled(
        policy=policy,
        version=policy.version,
        close_codes=frozenset(c for c in REASON_CODES if policy.action(c) == "close_line"),
        active_codes=frozenset(c for c in REASON_CODES if policy.action(c) != "off"),
        milestones=tuple(sorted(set(serious.flag_milestones) | {serious.days})),
        flag_milestones=frozenset(serious.flag_milestones),
        serious_days=serious.days,
        cash_window=hours(policy.cash_out.window_hours),
        card_window=days(policy.cash_out.card_bound_within_days),
        cash_ratio=policy.cash_out.min_outflow_ratio,
        quick_cycle=hours(policy.score_swiping.quick_cycle_hours),
        swipe_window=days(policy.score_swiping.window_days),
        swipe_min=policy.score_swiping.min_quick_cycles,
        early_after=hours(policy.frequent_early_repayment.min_hours_after_drawdown),
        early_window=days(policy.frequent_early_repayment.window_days),
        early_min=policy.frequent_early_repayment.min_early_settlements,
        device_windows=device_windows,
        device_keep=max(w for w, _ in device_windows),
        device_min_window=min(w for w, _ in device_windows),
        device_min_threshold=min(n for _, n in device_windows),
        churn_window=days(policy.account_info_churn.window_days),
        churn_min=policy.account_info_churn.min_changes,
        churn_fields=frozenset(policy.account_info_churn.profile_fields),
        inactivity=days(policy.inactivity.days),
        min_score=policy.low_credit_score.min_score,
        cooling=days(policy.restore.cooling_days),
        severe_cooling=days(policy.restore.severe_cooling_days),
        severe_codes=frozenset(policy.restore.severe_reasons),
        recent_login=days(policy.restore.recent_login_days),
        restore_min_score=policy.restore.min_credit_score,
        dedupe_window=days(policy.memory.dedupe_days),
        dedupe_max=policy.memory.dedupe_max_ids,
        grace=policy.time.grace_seconds * SECOND,
    )
