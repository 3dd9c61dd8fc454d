"""The deployment files agree with the code: valid Kubernetes objects, real commands, settings and ports."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import (
    K8S,
    command_exists,
    command_options,
    compose,
    dockerfile_ports,
    known_env,
    render_k8s,
)

KUBERNETES_VERSION = "1.33"
CRD = K8S.parent.parent / "tests" / "deploy" / "keda.sh_scaledobjects.yaml"


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in render_k8s() if doc["kind"] == kind]


def containers() -> list[dict[str, Any]]:
    return [c for doc in by_kind("Deployment") for c in doc["spec"]["template"]["spec"]["containers"]]


def config() -> dict[str, str]:
    (config_map,) = by_kind("ConfigMap")
    data: dict[str, str] = config_map["data"]
    return data


def test_the_base_renders_every_resource() -> None:
    kinds = sorted(doc["kind"] for doc in render_k8s())
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "PodDisruptionBudget", "ScaledObject", "Service"]


@pytest.mark.parametrize("doc", [d for d in render_k8s() if d["kind"] != "ScaledObject"], ids=lambda d: d["kind"])
def test_kubernetes_objects_match_the_api_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_scaled_object_matches_kedas_crd() -> None:
    crd = next(doc for doc in yaml.safe_load_all(CRD.read_text()) if doc)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    (scaled,) = by_kind("ScaledObject")
    jsonschema.validate(scaled, version["schema"]["openAPIV3Schema"])


def test_the_scaled_object_scales_the_workers_on_their_own_lag() -> None:
    (scaled,) = by_kind("ScaledObject")
    (worker,) = [d for d in by_kind("Deployment") if d["metadata"]["name"] == scaled["spec"]["scaleTargetRef"]["name"]]
    (trigger,) = scaled["spec"]["triggers"]
    settings = config()
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == settings["COLLECTORS_APP_ID"]
    assert trigger["metadata"]["topic"] == settings["COLLECTORS_PREDICTIONS_TOPIC"]
    assert "kafka://" + trigger["metadata"]["bootstrapServers"] == settings["COLLECTORS_BROKER"]
    assert scaled["spec"]["minReplicaCount"] == 1
    assert scaled["spec"]["maxReplicaCount"] == int(settings["COLLECTORS_PARTITIONS"])
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]


def test_every_environment_variable_is_a_real_setting() -> None:
    known = known_env()
    named = set(config())
    for container in containers():
        named.update(env["name"] for env in container.get("env", []))
    for service in compose()["services"].values():
        named.update(name for name in service.get("environment", {}) if name.startswith("COLLECTORS_"))
    unknown = sorted(name for name in named if name.startswith("COLLECTORS_") and name not in known)
    assert not unknown, f"settings that nothing reads: {unknown}"


def test_containers_run_real_commands_on_ports_the_image_exposes() -> None:
    exposed = dockerfile_ports()
    for container in containers():
        assert container["image"].split(":")[0] == "collectors"
        assert command_exists(container["args"]), container["args"]
        options = command_options(container["args"])
        assert {arg for arg in container["args"] if arg.startswith("--")} <= options, container["args"]
        assert {port["containerPort"] for port in container["ports"]} <= exposed


def test_probes_use_the_health_endpoints() -> None:
    for container in containers():
        paths = {container[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe")}
        assert paths == {"/healthz", "/readyz"}, container["name"]


def test_compose_services_run_real_commands() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        if "collectors:" not in image or service.get("entrypoint"):
            continue
        command = service.get("command", ["worker"])
        assert command_exists(command), (name, command)
        assert {arg for arg in command if arg.startswith("--")} <= command_options(command), (name, command)


def test_docker_compose_accepts_the_file_with_every_profile() -> None:
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode
    ):
        pytest.skip("the Docker Compose v2 plugin is not installed here")
    profiles = sorted({p for service in compose()["services"].values() for p in service.get("profiles", [])})
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    done = subprocess.run(
        ["docker", "compose", "-f", str(K8S.parent / "compose.yaml"), *args, "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
