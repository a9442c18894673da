"""The rule registry is the one list of rules: reason codes, policy sections, compiled
parameters, messages and the standing and time-triggered sets all derive from it."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import get_args

import pytest

from schemas.outputs import REASON_CODES, RuleCode
from tests.core.scenario import POLICY, Timeline, at, score
from tests.integration.scenarios import in_time_order, reason_histories
from workers.core import rules as rules_package
from workers.core.compiled import compile_policy
from workers.core.engine import Engine
from workers.core.messages import close_message, code_text, unmet_message
from workers.core.policy import Policy, load_policy, parse_policy
from workers.core.rules import (
    BY_CODE,
    LISTENERS,
    RULES,
    STANDING,
    TIME_TRIGGERED,
    TIME_TRIGGERED_CODES,
)
from workers.core.rules.base import Rule, RuleConfig
from workers.core.state import UserState
from workers.sim.generator import SimulationConfig, generate


def test_the_registry_and_the_contracts_list_the_same_codes_in_the_same_order() -> None:
    assert tuple(rule.code for rule in RULES) == REASON_CODES == get_args(RuleCode)
    assert list(BY_CODE) == list(REASON_CODES)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_each_rule_is_whole(rule: Rule[RuleConfig, object]) -> None:
    assert rule.section == rule.code.lower()
    assert issubclass(rule.config_model, RuleConfig)
    assert rule.config_model() == load_policy().rule(rule.code), "defaults: default.toml's"
    assert rule.describes and rule.close_text
    assert rule.standing or rule.time_triggered, "a rule is true at some instant or at a deadline"
    assert all(event_type in LISTENERS for event_type in rule.events)
    assert type(rule).__module__ == f"workers.core.rules.{rule.section}"


def test_the_policy_has_one_section_per_rule_named_after_its_code() -> None:
    rule_sections = {rule.section for rule in RULES}
    sections = [name for name in Policy.model_fields if name in rule_sections]
    assert sections == [rule.section for rule in RULES]
    assert next(iter(Policy.model_fields)) == "version"
    policy = Policy()
    for rule in RULES:
        assert policy.rule(rule.code) == rule.config_model()
        assert isinstance(policy.rule(rule.code), rule.config_model)


def test_the_default_policy_file_has_a_section_per_rule_and_no_other_rule() -> None:
    text = resources.files("workers.policy").joinpath("default.toml").read_text()
    tables = {name for name, value in tomllib.loads(text).items() if isinstance(value, dict)}
    assert tables - {"restore", "time", "memory"} == {rule.section for rule in RULES}


def test_a_section_is_validated_by_its_rules_model() -> None:
    policy = parse_policy("[low_credit_score]\naction = 'flag'\nmin_score = 550\n")
    assert policy.action("LOW_CREDIT_SCORE") == "flag"
    compiled = compile_policy(policy)
    assert compiled.params["LOW_CREDIT_SCORE"].min_score == 550
    assert "LOW_CREDIT_SCORE" in compiled.active_codes - compiled.close_codes


def test_compiled_parameters_come_from_every_rule() -> None:
    compiled = compile_policy(load_policy())
    assert set(compiled.params) == set(REASON_CODES)
    assert compiled.active_codes == frozenset(REASON_CODES)
    assert compiled.close_codes == frozenset(REASON_CODES) - {"CARD_BIND_UNBIND"}


def test_standing_and_time_triggered_sets() -> None:
    raising = {rule.code for rule in RULES if rule.time_triggered and rule.deadline_raises}
    assert raising == TIME_TRIGGERED_CODES
    assert {"SERIOUS_OVERDUE", "INACTIVITY"} == TIME_TRIGGERED_CODES
    assert [rule.code for rule in RULES if rule.time_triggered and not rule.deadline_raises] == [
        "MANUAL_REVIEW"  # its deadline is the end of an override
    ]
    assert [rule.code for rule in STANDING] == [
        code for code in REASON_CODES if code != "INACTIVITY"
    ]


def test_every_module_of_the_package_is_a_registered_rule() -> None:
    package = Path(rules_package.__file__).parent
    modules = {path.stem for path in package.glob("*.py")} - {"__init__", "base"}
    assert modules == {rule.section for rule in RULES}


def test_messages_come_from_the_rules() -> None:
    assert code_text("LOW_CREDIT_SCORE") == "a low credit score"
    assert close_message("INACTIVITY", {"days_without_drawdown": 60}) == (
        "You have not borrowed on your credit line for 60 days, so it has been closed."
    )
    assert unmet_message("RISK_STILL_PRESENT", "CASH_OUT").endswith(
        "still going on: borrowed money moved to a new card."
    )
    for rule in RULES:
        assert close_message(rule.code, {}) and code_text(rule.code) == rule.describes


def test_the_status_api_lists_the_standing_rules_that_hold() -> None:
    timeline = Timeline()
    timeline.run([score(at(1), 550)], until=at(2))
    status = timeline.engine.status("u1")
    assert status is not None
    assert [signal["signal"] for signal in status["active_signals"]] == ["LOW_CREDIT_SCORE"]
    assert status["active_signals"][0]["action"] == "close_line"
    assert status["active_signals"][0]["evidence"]["credit_score"] == 550


@pytest.mark.parametrize(("action", "listed"), [("flag", ["flag"]), ("off", [])])
def test_the_status_api_names_each_signal_s_action_and_leaves_out_rules_turned_off(
    action: str, listed: list[str]
) -> None:
    policy = parse_policy(f"[low_credit_score]\naction = '{action}'\n")
    timeline = Timeline(policy)
    timeline.run([score(at(1), 550)], until=at(2))
    status = timeline.engine.status("u1")
    assert status is not None
    assert [signal["action"] for signal in status["active_signals"]] == listed


def test_a_rule_has_no_deadline_while_the_field_it_needs_is_empty() -> None:
    """``schedule`` skips a time-triggered rule whose ``deadline_needs`` field is empty: over a
    varied history (overrides included), its deadline is None whenever that field is empty."""
    needing = [rule for rule in TIME_TRIGGERED if rule.deadline_needs is not None]
    assert {rule.code: rule.deadline_needs for rule in needing} == {
        "SERIOUS_OVERDUE": "installments",
        "MANUAL_REVIEW": "overrides",
    }
    assert all(rule.deadline_needs in UserState.__dataclass_fields__ for rule in needing)
    engine, rules = Engine(POLICY), compile_policy(POLICY)
    events = [
        *generate(SimulationConfig(users=60, days=200, seed=3)),
        *in_time_order(reason_histories(prefix="n").values()),
    ]
    checked = 0
    for event in events:
        engine.apply(event)
        state = engine.state_of(event.user_id)
        assert state is not None
        for rule in needing:
            if not getattr(state, rule.deadline_needs or ""):
                assert rule.deadline(state, rules) is None
                checked += 1
    assert checked > 1000
