"""Paths and helpers shared by the deployment tests.

The system tools (promtool, prometheus, shellcheck) are installed by deploy/ci-tools.sh, the
Python-packaged ones (hadolint, kubectl, check-jsonschema, kubernetes-validate) by the dev
extra from uv.lock; a missing tool fails its test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DASHBOARD = GRAFANA / "lineguard.json"
RUNBOOK = REPO / "docs" / "deployment.md"

# Grafana's built-in variables, replaced by values Prometheus accepts.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$instance": ".*",
}


def tool(name: str) -> str:
    """The path of a command-line tool, or a test failure saying how to get it."""
    # The environment's own scripts first: the tests may run without it being activated.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    path = shutil.which(name, path=search)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make install-dev tools`")
    return path


def run(*args: str | Path, cwd: Path = REPO, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a tool (resolved with ``tool``) and capture its output as text."""
    command = [tool(str(args[0])), *map(str, args[1:])]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(text: str) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def alert_rules() -> list[dict[str, Any]]:
    rules = load_yaml(PROMETHEUS / "alerts.yml")
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def dashboard_expressions(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variables."""
    exprs = [t["expr"] for p in dashboard_panels(board) for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query" and isinstance(query, dict):
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query["query"])
            assert match, f"unexpected variable query {query['query']!r}"
            exprs.append(match.group(1))
    return exprs


def as_prometheus_expr(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by concrete values."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unreplaced Grafana variable in {expr!r}"
    return expr


_METRIC = re.compile(r"\b(lineguard_[a-z0-9_]+|up)\b(?!\s*\()")


def metric_names(exprs: Iterable[str]) -> set[str]:
    """The lineguard_* series names (and ``up``) that PromQL expressions read.

    Label values are quoted and label names never start with ``lineguard_``, so a name
    token outside quotes that starts so is a series name."""
    names: set[str] = set()
    for expr in exprs:
        unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
        names.update(_METRIC.findall(unquoted))
    return names


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


def worker_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services that run ``lineguard worker`` (built from this repository)."""
    return {
        name: service
        for name, service in spec["services"].items()
        if str(service.get("image", "")).startswith("lineguard:")
    }


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment as the container sees it with nothing set on the
    host: ``${NAME:-default}`` takes its default."""
    return {
        name: re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))
        for name, value in service["environment"].items()
    }


def rendered_k8s() -> list[dict[str, Any]]:
    """deploy/k8s rendered by kustomize (kubectl's built-in), as a list of objects."""
    result = run("kubectl", "kustomize", K8S)
    assert result.returncode == 0, result.stderr
    return load_yaml_all(result.stdout)


def env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def exposed_series_names(registry_families: Any) -> set[str]:
    """Series names a scrape can return, from metric families (type decides suffixes)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    return {
        family.name + suffix
        for family in registry_families
        for suffix in suffixes.get(family.type, ("",))
    }


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def healthcheck_command() -> list[str]:
    """The image's HEALTHCHECK command, run with this interpreter."""
    healthcheck = dict(dockerfile_instructions())["HEALTHCHECK"]
    _, _, command = healthcheck.partition(" CMD ")
    argv = json.loads(command)
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]
