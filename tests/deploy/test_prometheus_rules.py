"""Prometheus configuration and alert rules, checked and unit-tested with promtool."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from deploy_support import PROMETHEUS, RUNBOOK, alert_rules, load_yaml, run

# The conditions the deployment must alert on, by alert name.
REQUIRED_ALERTS = {
    "LineguardWorkerDown",  # a worker is down
    "LineguardConsumerLagGrowing",  # consumer lag growing
    "LineguardDecisionLatencyHigh",  # event-to-decision p99 over its objective
    "LineguardDeadLetterRatioHigh",  # dead-letter ratio over 1%
    "LineguardRebalancingTooOften",  # rebalancing too often
    "LineguardNoDecisions",  # no decisions for a long time while events flow
}


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_prometheus_config_is_valid(config: str) -> None:
    result = run("promtool", "check", "config", PROMETHEUS / config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_alert_rules_are_valid() -> None:
    result = run("promtool", "check", "rules", PROMETHEUS / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_alert_unit_tests_pass() -> None:
    result = run("promtool", "test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The rule tests bite: a dead-letter threshold of 5% instead of 1% fails them."""
    shutil.copy(PROMETHEUS / "alerts.test.yml", tmp_path)
    rules = (PROMETHEUS / "alerts.yml").read_text()
    assert rules.count("> 0.01\n") == 1
    (tmp_path / "alerts.yml").write_text(rules.replace("> 0.01\n", "> 0.05\n"))
    result = run("promtool", "test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "LineguardDeadLetterRatioHigh" in result.stdout + result.stderr


def test_required_alerts_exist() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) >= REQUIRED_ALERTS


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = load_yaml(PROMETHEUS / "alerts.test.yml")
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_every_alert_has_a_severity_summary_and_runbook_section() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/deployment.md", rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in headings, f"no runbook section for {rule['alert']} in {RUNBOOK}"
