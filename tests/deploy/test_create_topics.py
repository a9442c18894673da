"""deploy/k8s/create-topics.sh, run for real by /bin/sh against a stand-in kafka-topics.sh.

The stand-in keeps the topics it is asked to create in a JSON file and describes them the
way Kafka's tool does, so the script's arguments, idempotence and checks are exercised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deploy_support import K8S, REPO, run

SCRIPT = K8S / "create-topics.sh"

FAKE_KAFKA_TOPICS = """\
#!{python}
import json, os, sys
state = os.environ["FAKE_KAFKA_STATE"]
path = os.path.join(state, "topics.json")
topics = json.load(open(path)) if os.path.exists(path) else {{}}
args = sys.argv[1:]
def value(flag):
    return args[args.index(flag) + 1] if flag in args else None
configs = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--config")
if value("--command-config"):
    with open(os.path.join(state, "command-config.txt"), "a") as out:
        out.write(open(value("--command-config")).read())
with open(os.path.join(state, "calls.jsonl"), "a") as out:
    out.write(json.dumps(args) + "\\n")
topic = value("--topic")
if "--create" in args:
    if topic not in topics:
        topics[topic] = {{"partitions": int(value("--partitions")),
                         "replication_factor": int(value("--replication-factor")),
                         "configs": configs}}
    json.dump(topics, open(path, "w"))
elif "--describe" in args:
    t = topics[topic]
    shown = ",".join(f"{{k}}={{v}}" for k, v in t["configs"].items())
    print(f"Topic: {{topic}}\\tTopicId: x\\tPartitionCount: {{t['partitions']}}\\t"
          f"ReplicationFactor: {{t['replication_factor']}}\\tConfigs: {{shown}}")
    for p in range(t["partitions"]):
        print(f"\\tTopic: {{topic}}\\tPartition: {{p}}\\tLeader: 1\\tReplicas: 1\\tIsr: 1")
"""


@pytest.fixture
def kafka(tmp_path: Path) -> Path:
    """A directory holding the stand-in kafka-topics.sh and its state."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kafka-topics.sh"
    fake.write_text(FAKE_KAFKA_TOPICS.format(python=sys.executable))
    fake.chmod(0o755)
    return tmp_path


def _run_script(kafka: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "KAFKA_BIN": str(kafka / "bin"),
        "FAKE_KAFKA_STATE": str(kafka),
        "LINEGUARD_BROKERS": "kafka:9092",
        **env,
    }
    return subprocess.run(
        ["/bin/sh", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=60
    )


def _topics(kafka: Path) -> dict[str, Any]:
    return json.loads((kafka / "topics.json").read_text())  # type: ignore[no-any-return]


def _settings(**env: str) -> Any:
    from workers.settings import Settings

    return Settings(**env)  # type: ignore[arg-type]


def test_creates_every_topic_co_partitioned_and_the_state_and_overrides_compacted(
    kafka: Path,
) -> None:
    result = _run_script(kafka, LINEGUARD_PARTITIONS="12", LINEGUARD_REPLICATION_FACTOR="3")
    assert result.returncode == 0, result.stderr
    topics = _topics(kafka)
    settings = _settings()
    policies = settings.topics.policies
    assert set(topics) == {*settings.topics.all(), policies}
    for name, topic in topics.items():
        assert topic["partitions"] == (1 if name == policies else 12), name
        assert topic["replication_factor"] == 3, name
        assert topic["configs"]["min.insync.replicas"] == "2", name
        compacted = topic["configs"].get("cleanup.policy") == "compact"
        assert compacted == (name in (*settings.topics.compacted(), policies)), name
    assert not (kafka / "command-config.txt").exists()


def test_defaults_are_the_workers_defaults(kafka: Path) -> None:
    assert _run_script(kafka).returncode == 0
    settings = _settings()
    for name, topic in _topics(kafka).items():
        assert topic["partitions"] == (
            1 if name == settings.topics.policies else settings.partitions
        )
        assert topic["replication_factor"] == settings.replication_factor
        assert topic["configs"]["min.insync.replicas"] == "1"


def test_running_again_changes_nothing(kafka: Path) -> None:
    assert _run_script(kafka, LINEGUARD_PARTITIONS="12").returncode == 0
    before = _topics(kafka)
    again = _run_script(kafka, LINEGUARD_PARTITIONS="12")
    assert again.returncode == 0, again.stderr
    assert _topics(kafka) == before


def test_an_existing_topic_with_another_partition_count_is_an_error(kafka: Path) -> None:
    assert _run_script(kafka, LINEGUARD_PARTITIONS="6").returncode == 0
    result = _run_script(kafka, LINEGUARD_PARTITIONS="12")
    assert result.returncode != 0
    assert "has 6 partitions, expected 12" in result.stderr


def test_an_existing_changelog_that_is_not_compacted_is_an_error(kafka: Path) -> None:
    changelog = _settings().topics.changelog
    (kafka / "topics.json").write_text(
        json.dumps({changelog: {"partitions": 6, "replication_factor": 1, "configs": {}}})
    )
    result = _run_script(kafka)
    assert result.returncode != 0
    assert "not compacted" in result.stderr


def test_topic_names_follow_the_workers_overrides(kafka: Path) -> None:
    env = {"LINEGUARD_TOPICS__DECISIONS": "risk.decisions", "LINEGUARD_TOPICS__LOGIN": "risk.login"}
    assert _run_script(kafka, **env).returncode == 0
    settings = _settings(topics={"decisions": "risk.decisions", "login": "risk.login"})
    assert set(_topics(kafka)) == {*settings.topics.all(), settings.topics.policies}


def test_sasl_ssl_credentials_reach_the_kafka_tools(kafka: Path) -> None:
    result = _run_script(
        kafka,
        LINEGUARD_SECURITY__PROTOCOL="SASL_SSL",
        LINEGUARD_SECURITY__SASL_MECHANISM="SCRAM-SHA-256",
        LINEGUARD_SECURITY__SASL_USERNAME="risk",
        LINEGUARD_SECURITY__SASL_PASSWORD="s3cret",
        LINEGUARD_SECURITY__SSL_CAFILE="/etc/kafka-ca/ca.pem",
    )
    assert result.returncode == 0, result.stderr
    config = (kafka / "command-config.txt").read_text().splitlines()
    assert "security.protocol=SASL_SSL" in config
    assert "sasl.mechanism=SCRAM-SHA-256" in config
    assert "ssl.truststore.type=PEM" in config
    assert "ssl.truststore.location=/etc/kafka-ca/ca.pem" in config
    assert (
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="risk" password="s3cret";'
    ) in config
    assert "s3cret" not in result.stdout + result.stderr


def test_sasl_without_credentials_is_an_error(kafka: Path) -> None:
    result = _run_script(kafka, LINEGUARD_SECURITY__PROTOCOL="SASL_SSL")
    assert result.returncode != 0
    assert "LINEGUARD_SECURITY__SASL_USERNAME is required" in result.stderr
    assert not (kafka / "topics.json").exists()


@pytest.mark.parametrize("script", ["deploy/k8s/create-topics.sh", "deploy/ci-tools.sh"])
def test_shellcheck_passes(script: str) -> None:
    result = run("shellcheck", REPO / script)
    assert result.returncode == 0, result.stdout + result.stderr
