"""The Grafana dashboard and its provisioning: structure, and every query parsed by promtool."""

from __future__ import annotations

from pathlib import Path

import yaml
from deploy_support import (
    GRAFANA,
    as_prometheus_expr,
    dashboard,
    dashboard_expressions,
    dashboard_panels,
    load_yaml,
    run,
)

REQUIRED_PANELS = [
    "Events in by type",
    "Decisions by reason",
    "Flags by signal",
    "Dead letters by error kind",
    "Event-to-decision latency",
    "Consumer lag per partition",
    "Event-time lag per partition",
    "Users in store",
    "Deadline index size",
    "Rebalances",
    "Readiness",
]


def _check_as_rules(exprs: list[str], tmp_path: Path) -> tuple[int, str]:
    """promtool parses each expression as a recording rule: no server needed."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": as_prometheus_expr(expr)}
                    for i, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run("promtool", "check", "rules", path)
    return result.returncode, result.stdout + result.stderr


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    exprs = dashboard_expressions(dashboard())
    assert len(exprs) >= 20
    code, output = _check_as_rules(exprs, tmp_path)
    assert code == 0, output
    assert f"SUCCESS: {len(exprs)} rules found" in output


def test_promtool_rejects_a_broken_query(tmp_path: Path) -> None:
    code, output = _check_as_rules(["sum by (type (rate(lineguard_flags_total[1m]))"], tmp_path)
    assert code != 0, output


def test_the_required_panels_are_there() -> None:
    titles = [panel["title"] for panel in dashboard_panels(dashboard())]
    for required in REQUIRED_PANELS:
        assert any(title.startswith(required) for title in titles), required


def test_panels_have_unique_ids_fit_the_grid_and_query_something() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard_panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]
        assert 'job="lineguard"' in "".join(t["expr"] for t in panel["targets"]), panel["title"]


def test_queries_use_the_provisioned_prometheus() -> None:
    board = dashboard()
    (source,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    provisioned = load_yaml(GRAFANA / "provisioning/datasources/prometheus.yml")["datasources"]
    (prometheus,) = provisioned
    assert prometheus["type"] == "prometheus"
    assert source["current"]["value"] == prometheus["uid"]
    reference = {"type": "prometheus", "uid": f"${{{source['name']}}}"}
    for panel in dashboard_panels(board):
        assert panel["datasource"] == reference, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == reference, panel["title"]


def test_dashboard_provider_points_at_the_dashboard_folder() -> None:
    providers = load_yaml(GRAFANA / "provisioning/dashboards/lineguard.yml")["providers"]
    (provider,) = providers
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
    assert dashboard()["uid"] == "lineguard"
