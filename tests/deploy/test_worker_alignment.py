"""The deployment speaks the worker's language: its settings and its metric names.

pydantic-settings ignores unknown LINEGUARD_* variables, so a misspelt name in a manifest
would silently fall back to a default; these tests catch it. Metric names in the dashboard
and the alerts are checked against the worker's metrics registry (and, in
test_prometheus_scrape.py, against a running worker)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    COMPOSE_FILE,
    DASHBOARD,
    DOCKERFILE,
    K8S,
    PROMETHEUS,
    REPO,
    RUNBOOK,
    alert_rules,
    compose,
    compose_env,
    dashboard,
    dashboard_expressions,
    env_file,
    exposed_series_names,
    metric_names,
    rendered_k8s,
    worker_services,
)
from pydantic import BaseModel

from workers.metrics import Metrics
from workers.settings import Settings

_ENV_NAME = re.compile(r"\bLINEGUARD_[A-Z0-9_]+")

DEPLOYMENT_FILES = [
    COMPOSE_FILE,
    DOCKERFILE,
    RUNBOOK,
    *sorted(K8S.iterdir()),
    *sorted(PROMETHEUS.iterdir()),
]


def _field_for(env_name: str) -> Any:
    """The settings field an environment variable sets, or None if it sets nothing."""
    prefix = Settings.model_config["env_prefix"]
    delimiter = Settings.model_config["env_nested_delimiter"]
    assert prefix and delimiter
    path = env_name.removeprefix(prefix).lower().split(delimiter.lower())
    model: Any = Settings
    field = None
    for index, part in enumerate(path):
        if part == "" and index == len(path) - 1 and field is not None:
            return field  # LINEGUARD_TOPICS__<NAME>: a prefix naming a nested model
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = field.annotation
    return field


def test_the_name_check_knows_a_real_name_from_a_typo() -> None:
    assert _field_for("LINEGUARD_SECURITY__SASL_PASSWORD") is not None
    assert _field_for("LINEGUARD_TOPICS__DECISIONS") is not None
    assert _field_for("LINEGUARD_BOOTSTRAP_SERVERS") is None
    assert _field_for("LINEGUARD_SECURITY__SASL_PASWORD") is None


@pytest.mark.parametrize("path", DEPLOYMENT_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_lineguard_variable_is_a_worker_setting(path: Path) -> None:
    if not path.is_file():
        pytest.fail(f"{path} is missing")
    names = set(_ENV_NAME.findall(path.read_text()))
    unknown = sorted(name for name in names if _field_for(name) is None)
    assert unknown == [], f"{path.name} sets variables the worker ignores"


def _settings_from(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("LINEGUARD_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return Settings()


def test_compose_workers_settings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for service in worker_services(compose()).values():
        env = compose_env(service)
        settings = _settings_from(env, monkeypatch)
        assert settings.store == "rocksdb"
        assert settings.partitions == 12
        assert settings.create_topics is False
        assert settings.advertised_url() == env["LINEGUARD_WEB_ADVERTISED_URL"]


def test_kubernetes_workers_settings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    statefulset = next(o for o in rendered_k8s() if o["kind"] == "StatefulSet")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env: dict[str, Any] = env_file(K8S / "config.env")
    pod_name = f"{statefulset['metadata']['name']}-0"
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"].replace("$(POD_NAME)", pod_name)
        elif "secretKeyRef" in item["valueFrom"]:
            env[item["name"]] = f"from-secret-{item['valueFrom']['secretKeyRef']['key']}"
    settings = _settings_from(env, monkeypatch)
    assert settings.security.protocol == "SASL_SSL"
    assert settings.security.sasl_password is not None
    assert settings.client_id == pod_name
    assert (
        settings.advertised_url() == f"http://{pod_name}.{statefulset['spec']['serviceName']}:6066"
    )
    assert settings.store == "rocksdb"


def test_image_defaults_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    env = dict(re.findall(r"\b(LINEGUARD_[A-Z0-9_]+)=(\S+)", text))
    settings = _settings_from(env, monkeypatch)
    assert settings.web_host == "0.0.0.0", "the image must listen beyond loopback"
    assert settings.store == "rocksdb"


def test_dashboard_and_alerts_read_only_metrics_the_worker_defines() -> None:
    exposed = exposed_series_names(Metrics().registry.collect()) | {"up"}
    exprs = dashboard_expressions(dashboard()) + [rule["expr"] for rule in alert_rules()]
    used = metric_names(exprs)
    assert "lineguard_decisions_total" in used
    assert used - exposed == set(), f"read by {DASHBOARD.name} or alerts.yml, never exposed"


def test_the_dashboard_shows_every_worker_metric() -> None:
    exposed = {name for name in exposed_series_names(Metrics().registry.collect())}
    shown = metric_names(dashboard_expressions(dashboard()))
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in shown}
    missing = {
        name
        for name in exposed
        if re.sub(r"_(total|bucket|sum|count|created)$", "", name) not in families
    }
    assert missing == set(), "worker metrics with no panel"
