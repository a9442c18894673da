"""End to end: a worker with the compose file's settings on the embedded broker, fed by the
simulator, scraped by a real Prometheus server (Debian's) that loads deploy's alert rules.

Checks what only a running worker can tell: the decisions reach Prometheus, every metric
and label the dashboard and the alerts read is exposed, every dashboard query evaluates,
the rules evaluate without errors, and the image's health check passes against it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    PROMETHEUS,
    REPO,
    alert_rules,
    as_prometheus_expr,
    compose,
    compose_env,
    dashboard,
    dashboard_expressions,
    dashboard_panels,
    exposed_series_names,
    healthcheck_command,
    metric_names,
    tool,
    worker_services,
)
from prometheus_client.parser import text_string_to_metric_families

from workers.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration

PARTITIONS = 4
# Panels that must show data once the simulator's traffic and one bad message are through.
PANELS_WITH_DATA = [
    "Events in by type",
    "Decisions by reason (per minute)",
    "Flags by signal (per minute)",
    "Dead letters by error kind (per minute)",
    "Event-to-decision latency",
    "Batch duration",
    "Consumer lag per partition",
    "Users in store",
    "Deadline index size",
    "Readiness",
    "Build",
]


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _worker_env(bootstrap: str, data_dir: Path, port: int) -> dict[str, str]:
    """The first compose worker's environment, pointed at the embedded broker."""
    service = next(iter(worker_services(compose()).values()))
    env = compose_env(service)
    policy_mount = next(
        v for v in service["volumes"] if v.split(":")[1] == env["LINEGUARD_POLICY_FILE"]
    )
    env.update(
        LINEGUARD_BROKERS=bootstrap,
        LINEGUARD_DATA_DIR=str(data_dir),
        LINEGUARD_POLICY_FILE=str(REPO / policy_mount.split(":")[0]),
        LINEGUARD_WEB_HOST="127.0.0.1",
        LINEGUARD_WEB_PORT=str(port),
        LINEGUARD_WEB_ADVERTISED_URL=f"http://127.0.0.1:{port}",
        # The embedded broker starts empty: the worker creates the topics it needs, with
        # fewer partitions to keep the test quick, and replays the simulated history on
        # the event clock so time-triggered rules fire too.
        LINEGUARD_CREATE_TOPICS="true",
        LINEGUARD_PARTITIONS=str(PARTITIONS),
        LINEGUARD_CLOCK="event",
        LINEGUARD_SESSION_TIMEOUT_SECONDS="6",
    )
    return env


async def _send_malformed(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"this is not an event", key=b"u-malformed")
    finally:
        await producer.stop()


@dataclass
class Stack:
    worker_url: str
    prometheus_url: str

    def query(self, expr: str) -> dict[str, Any]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = _get(url)
        answer: dict[str, Any] = json.loads(body or b"{}")
        assert status == 200 and answer.get("status") == "success", (expr, body[:500])
        return answer["data"]  # type: ignore[no-any-return]

    def scrape(self) -> str:
        status, body = _get(f"{self.worker_url}/metrics")
        assert status == 200
        return body.decode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_binary = tool("prometheus")
    tmp = tmp_path_factory.mktemp("e2e")
    processes: list[subprocess.Popen[bytes]] = []
    logs = {name: (tmp / f"{name}.log").open("wb") for name in ("worker", "prometheus")}
    with EmbeddedBroker() as broker:
        try:
            port = free_port()
            worker_url = f"http://127.0.0.1:{port}"
            env = {**os.environ, **_worker_env(broker.bootstrap, tmp / "data", port)}
            worker = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "worker"],
                env=env,
                stdout=logs["worker"],
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
            processes.append(worker)

            def worker_ready() -> bool:
                if worker.poll() is not None:
                    pytest.fail(f"worker exited: {(tmp / 'worker.log').read_text()[-3000:]}")
                return _get(f"{worker_url}/readyz")[0] == 200

            _wait_for("the worker to be ready", worker_ready)

            simulate = subprocess.run(
                [sys.executable, "-m", "workers.cli", "simulate", "--users", "300", "--days",
                 "120", "--seed", "3", "--rate", "50000", "--quiet", "--to-kafka",
                 broker.bootstrap],
                env=env, capture_output=True, text=True, timeout=120, cwd=REPO,
            )  # fmt: skip
            assert simulate.returncode == 0, simulate.stderr
            asyncio.run(_send_malformed(broker.bootstrap, "lineguard.login"))

            config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
            config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
            job = next(j for j in config["scrape_configs"] if j["job_name"] == "lineguard")
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
            config["scrape_configs"] = [job]
            (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
            shutil.copy(PROMETHEUS / "alerts.yml", tmp / "alerts.yml")
            prometheus_url = f"http://127.0.0.1:{free_port()}"
            prometheus = subprocess.Popen(
                [prometheus_binary, f"--config.file={tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address={prometheus_url.removeprefix('http://')}"],
                stdout=logs["prometheus"], stderr=subprocess.STDOUT,
            )  # fmt: skip
            processes.append(prometheus)
            _wait_for("Prometheus", lambda: _get(f"{prometheus_url}/-/ready")[0] == 200)
            yield Stack(worker_url, prometheus_url)
        finally:
            for process in reversed(processes):
                _stop(process)
            for log in logs.values():
                log.close()


def _value(stack: Stack, expr: str) -> float:
    result = stack.query(expr)["result"]
    return float(result[0]["value"][1]) if result else 0.0


def test_prometheus_sees_the_workers_decisions(stack: Stack) -> None:
    decisions = _wait_for(
        "decisions in Prometheus",
        lambda: _value(stack, 'sum(lineguard_decisions_total{job="lineguard"})'),
    )
    assert decisions > 0
    assert _value(stack, 'up{job="lineguard"}') == 1
    assert _value(stack, 'lineguard_ready{job="lineguard"}') == 1
    assert _value(stack, 'sum(lineguard_dead_letters_total{job="lineguard"})') >= 1


def test_the_alert_rules_evaluate_without_errors(stack: Stack) -> None:
    def rules() -> list[dict[str, Any]]:
        status, body = _get(f"{stack.prometheus_url}/api/v1/rules")
        groups = json.loads(body)["data"]["groups"] if status == 200 else []
        found = [rule for group in groups for rule in group["rules"]]
        return (
            found
            if found and all(r.get("lastEvaluation", "").startswith("2") for r in found)
            else []
        )

    evaluated = _wait_for("the rules to be evaluated", rules)
    assert {rule["name"] for rule in evaluated} == {rule["alert"] for rule in alert_rules()}
    for rule in evaluated:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
    # A healthy worker trips nothing that needs no waiting period.
    firing = stack.query('ALERTS{alertstate="firing"}')["result"]
    assert firing == []


def test_the_worker_exposes_every_metric_and_label_the_dashboard_and_alerts_read(
    stack: Stack,
) -> None:
    _wait_for("a decision in the scrape", lambda: "lineguard_decisions_total{" in stack.scrape())
    families = list(text_string_to_metric_families(stack.scrape()))
    exposed = exposed_series_names(families) | {"up"}
    labels: dict[str, set[str]] = {}
    for family in families:
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    exprs = dashboard_expressions(dashboard()) + [rule["expr"] for rule in alert_rules()]
    assert metric_names(exprs) - exposed == set()
    target_labels = {"job", "instance"}
    for expr in exprs:
        unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
        used = {
            label.strip()
            for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", unquoted)
            for label in group.split(",")
            if label.strip()
        }
        used |= set(re.findall(r"[{,]\s*([a-z_]+)\s*=~?", unquoted))
        available = set().union(*(labels.get(name, set()) for name in metric_names([expr])))
        assert used <= available | target_labels, (expr, used - available)


def test_every_dashboard_query_evaluates_and_the_main_panels_have_data(stack: Stack) -> None:
    _wait_for(
        "two scrapes with decisions",
        lambda: _value(stack, 'count_over_time(lineguard_ready{job="lineguard"}[1m])') >= 2,
    )
    for panel in dashboard_panels(dashboard()):
        results = [stack.query(as_prometheus_expr(t["expr"]))["result"] for t in panel["targets"]]
        if panel["title"] in PANELS_WITH_DATA:
            assert any(results), f"panel {panel['title']!r} shows no data"


def test_the_image_health_check_passes_against_the_worker(stack: Stack) -> None:
    port = stack.worker_url.rpartition(":")[2]
    env = {"LINEGUARD_WEB_PORT": port, "PATH": os.environ["PATH"]}
    result = subprocess.run(healthcheck_command(), env=env, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
