"""deploy/k8s: rendered by kustomize, validated against the Kubernetes schemas, consistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import K8S, PROMETHEUS, env_file, load_yaml, rendered_k8s, run

KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]  # the oldest and newest this deployment supports
STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
}


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return rendered_k8s()


def _one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _validate(path: Path, version: str) -> tuple[int, str]:
    result = run("kubernetes-validate", "--strict", "--quiet", "-k", version, path)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_manifests_match_the_kubernetes_schemas(
    objects: list[dict[str, Any]], version: str, tmp_path: Path
) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(objects))
    code, output = _validate(rendered, version)
    assert code == 0, output


def test_schema_validation_rejects_an_unknown_field(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    statefulset = _one(objects, "StatefulSet")
    statefulset["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump(statefulset))
    code, output = _validate(rendered, KUBERNETES_VERSIONS[-1])
    assert code != 0, output


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == on_disk
    assert kustomization["namespace"] == "lineguard"


def test_every_object_carries_the_standard_labels(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        assert set(labels) >= STANDARD_LABELS, f"{obj['kind']} {obj['metadata']['name']}"
        assert labels["app.kubernetes.io/name"] == "lineguard"


def test_statefulset_gives_each_pod_a_stable_identity_and_its_own_volume(
    objects: list[dict[str, Any]],
) -> None:
    statefulset = _one(objects, "StatefulSet")
    spec = statefulset["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["LINEGUARD_CLIENT_ID"]["value"] == "$(POD_NAME)"
    service = _one(objects, "Service", spec["serviceName"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert env["LINEGUARD_WEB_ADVERTISED_URL"]["value"] == (
        f"http://$(POD_NAME).{spec['serviceName']}:{_settings(objects)['LINEGUARD_WEB_PORT']}"
    )
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == _settings(objects)["LINEGUARD_DATA_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def _settings(objects: list[dict[str, Any]]) -> dict[str, str]:
    statefulset = _one(objects, "StatefulSet")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    (source,) = container["envFrom"]
    config_map = _one(objects, "ConfigMap", source["configMapRef"]["name"])
    return dict(config_map["data"])


def test_probes_resources_and_security(objects: list[dict[str, Any]]) -> None:
    statefulset = _one(objects, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (port,) = container["ports"]
    assert str(port["containerPort"]) == _settings(objects)["LINEGUARD_WEB_PORT"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_kafka_credentials_come_from_a_secret(objects: list[dict[str, Any]]) -> None:
    for kind in ("StatefulSet", "Job"):
        pod = _one(objects, kind)["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        for name in ("LINEGUARD_SECURITY__SASL_USERNAME", "LINEGUARD_SECURITY__SASL_PASSWORD"):
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "lineguard-kafka", kind
    config = env_file(K8S / "config.env")
    assert not any("PASSWORD" in key for key in config), "secrets belong in the Secret"


def test_the_status_token_comes_from_its_secret(objects: list[dict[str, Any]]) -> None:
    pod = _one(objects, "StatefulSet")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    reference = env["LINEGUARD_STATUS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "lineguard-status", "key": "token"}
    # The second token, only while rotating: a key the Secret need not have.
    also = env["LINEGUARD_STATUS_TOKEN_ALSO_ACCEPTED"]["valueFrom"]["secretKeyRef"]
    assert also == {"name": "lineguard-status", "key": "also-accepted", "optional": True}
    assert "LINEGUARD_STATUS_TOKEN" not in env_file(K8S / "config.env")


def test_policy_config_map_is_mounted_where_the_workers_read_it(
    objects: list[dict[str, Any]],
) -> None:
    pod = _one(objects, "StatefulSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    policy_file = Path(_settings(objects)["LINEGUARD_POLICY_FILE"])
    config_map = volumes[mounts[str(policy_file.parent)]]["configMap"]["name"]
    data = _one(objects, "ConfigMap", config_map)["data"]
    assert data[policy_file.name] == (K8S / "policy.toml").read_text()


def test_the_production_policy_is_valid() -> None:
    from workers.core.policy import load_policy

    policy = load_policy(K8S / "policy.toml")
    assert policy.version


def test_selectors_match_the_worker_pods(objects: list[dict[str, Any]]) -> None:
    statefulset = _one(objects, "StatefulSet")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    selectors = [
        statefulset["spec"]["selector"]["matchLabels"],
        _one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        *(s["spec"]["selector"] for s in objects if s["kind"] == "Service"),
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    pdb = _one(objects, "PodDisruptionBudget")["spec"]
    assert pdb.get("maxUnavailable") == 1


def test_replicas_do_not_exceed_the_partitions(objects: list[dict[str, Any]]) -> None:
    replicas = _one(objects, "StatefulSet")["spec"]["replicas"]
    assert 2 <= replicas <= int(_settings(objects)["LINEGUARD_PARTITIONS"])


def test_topic_job_uses_the_workers_settings_and_script(objects: list[dict[str, Any]]) -> None:
    job_pod = _one(objects, "Job")["spec"]["template"]["spec"]
    worker_pod = _one(objects, "StatefulSet")["spec"]["template"]["spec"]
    assert job_pod["containers"][0]["envFrom"] == worker_pod["containers"][0]["envFrom"]
    assert job_pod["containers"][0]["image"].startswith("apache/kafka:")
    script_map = job_pod["volumes"][0]["configMap"]["name"]
    data = _one(objects, "ConfigMap", script_map)["data"]
    assert data["create-topics.sh"] == (K8S / "create-topics.sh").read_text()


def test_prometheus_discovers_the_workers_through_the_headless_service(
    objects: list[dict[str, Any]],
) -> None:
    service = _one(objects, "Service", _one(objects, "StatefulSet")["spec"]["serviceName"])
    (port,) = service["spec"]["ports"]
    namespace = load_yaml(K8S / "kustomization.yaml")["namespace"]
    config = load_yaml(PROMETHEUS / "prometheus-k8s.yml")
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "lineguard")
    (sd,) = job["dns_sd_configs"]
    assert sd["type"] == "SRV"
    assert sd["names"] == [
        f"_{port['name']}._tcp.{service['metadata']['name']}.{namespace}.svc.cluster.local"
    ]
