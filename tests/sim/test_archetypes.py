"""Labels hold through the real core: archetypes trip their reason, near misses trip nothing.

A near miss must also be *near*: one step stricter on the rule it grazes, and it trips.
"""

from __future__ import annotations

from functools import cache
from random import Random
from typing import Any

import pytest

from schemas.events import Event
from workers.core.policy import Policy, load_policy
from workers.sim.archetypes import ARCHETYPES
from workers.sim.evaluate import PolicyOutcome, run_policies
from workers.sim.generator import SimulationConfig, generate, labels, timeline_events
from workers.sim.ordinary import FAMILIES, NEAR_MISSES, ordinary
from workers.sim.timeline import DAY, Timeline, epoch

DEFAULT = load_policy(None)
RISKY = sorted(name for name in ARCHETYPES if name != "ordinary")


def tightened(section: str, **changes: Any) -> Policy:
    data = DEFAULT.model_dump()
    data["version"] = f"stricter-{section}"
    data[section] = {**data[section], **changes}
    return Policy.model_validate(data)


@pytest.mark.parametrize("name", RISKY)
@pytest.mark.parametrize("span", ["shortest", "half a year"])
def test_each_archetype_alone_is_closed_for_exactly_its_reason(name: str, span: str) -> None:
    days = ARCHETYPES[name].min_days if span == "shortest" else 180
    config = SimulationConfig(users=12, days=days, seed=21, mix={name: 1})
    [outcome] = run_policies(generate(config), [DEFAULT], config.ends_at)
    for label in labels(config):
        closure = outcome.first_close.get(label.user_id)
        assert closure is not None, f"{label} was never closed"
        assert [reason.code for reason in closure.reasons] == [label.expected_reason]
        assert label.behaviour_started_at is not None
        assert label.behaviour_started_at <= closure.decided_at
        assert (label.user_id in outcome.first_restore) is label.expect_restore, label
    assert outcome.decisions["close_line"] == config.users  # never closed twice


def test_restored_users_are_expected_to_restore_and_ordinary_users_are_not() -> None:
    config = SimulationConfig(users=300, days=180, seed=2)
    expected = {label.archetype for label in labels(config) if label.expect_restore}
    assert expected == {"restored"}


@cache
def _near_miss_population(scenario: str, users: int = 16, days: int = 200) -> tuple[Event, ...]:
    start = epoch(SimulationConfig().start)
    events: list[Event] = []
    for index in range(users):
        rng = Random(index)
        timeline = Timeline(f"n{index:03d}", rng, start, start + days * DAY)
        ordinary(timeline, start + rng.randrange(DAY), [scenario])
        events += timeline_events(timeline)
    return tuple(sorted(events, key=lambda event: event.occurred_at))


def _closed_for(outcome: PolicyOutcome, reason: str) -> int:
    return sum(
        1
        for decision in outcome.first_close.values()
        if reason in [r.code for r in decision.reasons]
    )


# Scenario -> (the rule one step stricter, the reason it then trips).
STRICTER: dict[str, tuple[Policy, str]] = {
    "late_29": (tightened("serious_overdue", days=29), "SERIOUS_OVERDUE"),
    "cash_ratio": (tightened("cash_out", min_outflow_ratio=0.59), "CASH_OUT"),
    "cash_late": (tightened("cash_out", window_hours=37), "CASH_OUT"),
    "cash_old_card": (tightened("cash_out", card_bound_within_days=10), "CASH_OUT"),
    "churn_3": (tightened("account_info_churn", min_changes=3), "ACCOUNT_INFO_CHURN"),
    "churn_spread": (tightened("account_info_churn", window_days=33), "ACCOUNT_INFO_CHURN"),
    "swipe_2": (tightened("score_swiping", min_quick_cycles=2), "SCORE_SWIPING"),
    "swipe_spread": (tightened("score_swiping", window_days=35), "SCORE_SWIPING"),
    "early_3": (
        tightened("frequent_early_repayment", min_early_settlements=3),
        "FREQUENT_EARLY_REPAYMENT",
    ),
    "device_day": (
        tightened(
            "device_switching",
            windows=[
                {"hours": 24, "min_distinct_devices": 3},
                {"hours": 168, "min_distinct_devices": 6},
            ],
        ),
        "DEVICE_SWITCHING",
    ),
    "device_week": (
        tightened(
            "device_switching",
            windows=[
                {"hours": 24, "min_distinct_devices": 4},
                {"hours": 168, "min_distinct_devices": 5},
            ],
        ),
        "DEVICE_SWITCHING",
    ),
    "score_600": (tightened("low_credit_score", min_score=601), "LOW_CREDIT_SCORE"),
    "gap_89": (tightened("inactivity", days=88), "INACTIVITY"),
}
# Plain noise: realistic, but not staged against one threshold.
NOISE = {"late_short", "card_swap", "new_phone", "failed_burst", "dormant_month"}


def test_every_scenario_is_either_a_near_miss_or_noise() -> None:
    assert set(NEAR_MISSES) == set(STRICTER) | NOISE
    assert len(NEAR_MISSES) == sum(len(family) for family in FAMILIES.values())


@pytest.mark.parametrize("scenario", sorted(NEAR_MISSES))
def test_a_near_miss_alone_never_closes_a_line(scenario: str) -> None:
    events = _near_miss_population(scenario)
    [outcome] = run_policies(events, [DEFAULT], max(e.occurred_at for e in events))
    assert outcome.first_close == {}


@pytest.mark.parametrize("scenario", sorted(STRICTER))
def test_a_near_miss_trips_its_rule_one_step_stricter(scenario: str) -> None:
    stricter, reason = STRICTER[scenario]
    events = _near_miss_population(scenario)
    until = max(event.occurred_at for event in events)
    [outcome] = run_policies(events, [stricter], until)
    assert _closed_for(outcome, reason) >= 12, f"only {_closed_for(outcome, reason)} of 16"
