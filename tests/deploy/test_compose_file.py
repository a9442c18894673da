"""docker-compose.yml: valid against the Compose specification and wired consistently."""

from __future__ import annotations

from pathlib import Path

from deploy_support import (
    COMPOSE_FILE,
    GRAFANA,
    PROMETHEUS,
    REPO,
    compose,
    load_yaml,
    run,
    worker_services,
)


def _check_compose(path: Path) -> tuple[int, str]:
    result = run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)
    return result.returncode, result.stdout + result.stderr


def test_compose_file_matches_the_compose_specification() -> None:
    code, output = _check_compose(COMPOSE_FILE)
    assert code == 0, output


def test_the_schema_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_FILE.read_text().replace("    restart: unless-stopped", "    restart: [sometimes]")
    )
    code, output = _check_compose(broken)
    assert code != 0, output


def test_two_workers_share_a_group_with_their_own_identity_and_state() -> None:
    workers = worker_services(compose())
    assert len(workers) == 2
    envs = [service["environment"] for service in workers.values()]
    assert {env["LINEGUARD_GROUP_ID"] for env in envs} == {"lineguard"}
    assert len({env["LINEGUARD_CLIENT_ID"] for env in envs}) == 2
    assert len({env["LINEGUARD_WEB_ADVERTISED_URL"] for env in envs}) == 2
    for name, service in workers.items():
        env = service["environment"]
        assert env["LINEGUARD_STORE"] == "rocksdb"
        # The status token comes from the caller's environment, never from the file.
        assert env["LINEGUARD_STATUS_TOKEN"] == "${LINEGUARD_STATUS_TOKEN:-}"
        also = "LINEGUARD_STATUS_TOKEN_ALSO_ACCEPTED"
        assert env[also] == "${" + also + ":-}"
        assert env["LINEGUARD_WEB_HOST"] == "0.0.0.0"
        assert env["LINEGUARD_WEB_ADVERTISED_URL"] == f"http://{name}:{env['LINEGUARD_WEB_PORT']}"
        assert service["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    data_volumes = [
        volume.split(":")[0]
        for service in workers.values()
        for volume in service["volumes"]
        if volume.split(":")[1] == service["environment"]["LINEGUARD_DATA_DIR"]
    ]
    assert len(set(data_volumes)) == 2, "each worker needs its own state volume"
    assert set(data_volumes) <= set(compose()["volumes"]), "state volumes must be named volumes"


def test_topics_are_created_with_the_workers_partition_count() -> None:
    spec = compose()
    init = spec["services"]["kafka-init"]
    assert init["image"].startswith("apache/kafka:")
    assert init["entrypoint"][-1].endswith("create-topics.sh")
    for service in worker_services(spec).values():
        for key in ("LINEGUARD_BROKERS", "LINEGUARD_PARTITIONS", "LINEGUARD_REPLICATION_FACTOR"):
            assert init["environment"][key] == service["environment"][key], key
        assert service["environment"]["LINEGUARD_CREATE_TOPICS"] == "false"


def test_kafka_runs_in_kraft_mode_from_the_official_image() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "healthcheck" in kafka


def test_every_image_is_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service["image"]
        _, _, tag = image.rpartition(":")
        assert tag and tag != "latest" and "/" not in tag, f"{name}: {image}"
        assert any(ch.isdigit() for ch in tag), f"{name}: {image}"


def test_bind_mounts_exist_in_the_repository() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_every_worker_and_loads_the_alerts() -> None:
    spec = compose()
    workers = worker_services(spec)
    mounts = dict(v.split(":")[:2] for v in spec["services"]["prometheus"]["volumes"])
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./deploy/prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "lineguard")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    expected = {f"{name}:{s['environment']['LINEGUARD_WEB_PORT']}" for name, s in workers.items()}
    assert targets == expected


def test_grafana_is_provisioned_from_the_repository() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboard_target = mounts["./deploy/grafana/lineguard.json"]
    providers = load_yaml(GRAFANA / "provisioning/dashboards/lineguard.yml")["providers"]
    assert dashboard_target.rpartition("/")[0] == providers[0]["options"]["path"]
    datasource = load_yaml(GRAFANA / "provisioning/datasources/prometheus.yml")["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in compose()["services"]
