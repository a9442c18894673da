# ruff: noqa: E501  (a table reads best one case a line)
"""A policy file is validated strictly at load: every refusal names the key's path and why."""

from __future__ import annotations

import pytest

from workers.core.policy import Policy, load_policy, parse_policy
from workers.errors import PolicyError

REFUSED = {
    # name: (TOML, what the message must say)
    "unknown section": ("[cash_outt]\naction = 'flag'\n", "cash_outt: unknown key"),
    "unknown key": ("[cash_out]\nwindow_hour = 24\n", "cash_out.window_hour: unknown key"),
    "section not a table": ("cash_out = 3\n", "cash_out: should be a table (got 3)"),
    "quoted number": ("[serious_overdue]\ndays = '30'\n", "serious_overdue.days: should be a whole number (got '30')"),
    "fractional count": ("[score_swiping]\nmin_quick_cycles = 2.5\n", "score_swiping.min_quick_cycles: should be a whole number (got 2.5)"),
    "boolean count": ("[account_info_churn]\nmin_changes = true\n", "account_info_churn.min_changes: should be a whole number (got True)"),
    "quoted ratio": ("[cash_out]\nmin_outflow_ratio = '0.8'\n", "cash_out.min_outflow_ratio: should be a valid number"),
    "ratio above 1": ("[cash_out]\nmin_outflow_ratio = 8\n", "cash_out.min_outflow_ratio: should be less than or equal to 1 (got 8)"),
    "ratio of 0": ("[cash_out]\nmin_outflow_ratio = 0\n", "cash_out.min_outflow_ratio: should be greater than 0"),
    "zero window": ("[score_swiping]\nwindow_days = 0\n", "score_swiping.window_days: should be greater than 0 (got 0)"),
    "negative window": ("[frequent_early_repayment]\nwindow_days = -5\n", "frequent_early_repayment.window_days: should be greater than 0"),
    "zero hours in a list": ("[device_switching]\nwindows = [{ hours = 0, min_distinct_devices = 4 }]\n", "device_switching.windows[0].hours: should be greater than 0"),
    "one device is no switch": ("[device_switching]\nwindows = [{ hours = 24, min_distinct_devices = 1 }]\n", "device_switching.windows[0].min_distinct_devices: should be greater than or equal to 2"),
    "no device window": ("[device_switching]\nwindows = []\n", "device_switching.windows: device_switching needs at least one window"),
    "count of 0": ("[frequent_early_repayment]\nmin_early_settlements = 0\n", "frequent_early_repayment.min_early_settlements: should be greater than or equal to 1"),
    "score below the contract": ("[low_credit_score]\nmin_score = 300\n", "low_credit_score.min_score: should be greater than or equal to 350"),
    "score above the contract": ("[restore]\nmin_credit_score = 951\n", "restore.min_credit_score: should be less than or equal to 950"),
    "unknown action": ("[inactivity]\naction = 'close'\n", "inactivity.action: should be 'close_line', 'flag' or 'off' (got 'close')"),
    "milestones out of order": ("[serious_overdue]\nflag_milestones = [7, 1]\n", "serious_overdue.flag_milestones: flag_milestones must be increasing positive day counts"),
    "severe cools less": ("[restore]\ncooling_days = 200\n", "restore: severe_cooling_days (180) must be at least cooling_days (200)"),
    "unknown severe reason": ("[restore]\nsevere_reasons = ['CASHOUT']\n", "restore.severe_reasons: unknown reason codes: ['CASHOUT']"),
    "negative grace": ("[time]\ngrace = '-5m'\n", "time.grace: '-5m' is not a duration"),
    "grace as a number": ("[time]\ngrace = 15\n", "time.grace: should be a valid string (got 15)"),
    "grace too long": ("[time]\ngrace = '8d'\n", "time.grace: grace must be at most 7d"),
    "a date for a number": ("[inactivity]\ndays = 2026-01-01\n", "inactivity.days: should be a valid number (got '2026-01-01')"),
    "empty version": ("version = ''\n", "version: String should have at least 1 character"),
    "dedupe memory of 0 days": ("[memory]\ndedupe_days = 0\n", "memory.dedupe_days: should be greater than or equal to 1"),
}  # fmt: skip


@pytest.mark.parametrize(("toml", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_with_the_key_and_the_reason(toml: str, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(toml, "p.toml")
    assert str(raised.value).startswith("p.toml: invalid policy: ")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


ACCEPTED = {
    "integer for a float": ("[cash_out]\nwindow_hours = 12\n", "cash_out", "window_hours", 12.0),
    "ratio of exactly 1": ("[cash_out]\nmin_outflow_ratio = 1\n", "cash_out", "min_outflow_ratio", 1.0),
    "no cooling": ("[restore]\ncooling_days = 0\n", "restore", "cooling_days", 0.0),
    "grace of 0": ("[time]\ngrace = '0'\n", "time", "grace_seconds", 0),
    "hours after drawdown 0": ("[frequent_early_repayment]\nmin_hours_after_drawdown = 0\n", "frequent_early_repayment", "min_hours_after_drawdown", 0.0),
}  # fmt: skip


@pytest.mark.parametrize(
    ("toml", "section", "key", "value"), ACCEPTED.values(), ids=ACCEPTED.keys()
)
def test_meaningful_edges_are_accepted(toml: str, section: str, key: str, value: object) -> None:
    assert getattr(getattr(parse_policy(toml), section), key) == value


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(PolicyError, match=r"cash_out.min_outflow_ratio: .*; inactivity.days: "):
        parse_policy("[cash_out]\nmin_outflow_ratio = 2\n[inactivity]\ndays = 0\n")


def test_the_packaged_policy_is_the_default_and_validates_strictly() -> None:
    assert load_policy() == Policy()
