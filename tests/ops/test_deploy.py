"""``deploy/``: the image, docker-compose and Kubernetes files agree with the code.

No container runtime or cluster runs here, so these tests check what can drift without
one: every ``GATEWAY_*`` variable names a real setting and the whole set validates; the
services, probes, selectors and ports line up; and the sandbox command the compose file
runs really listens where the gateway is told to look.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import BaseModel

from adapters.registry import discover
from gateway.settings import Settings
from tests.ops.conftest import ROOT
from tests.support.net import free_port
from tests.support.settings import ENCRYPTION_KEY

DEPLOY = ROOT / "deploy"


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def by_kind(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d
        for d in k8s_documents()
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def setting_exists(variable: str) -> bool:
    """Whether ``GATEWAY_A__B__C`` names a field of ``Settings`` (suppliers: a field of
    that supplier's settings model)."""
    parts = variable.removeprefix("GATEWAY_").lower().split("__")
    model: type[BaseModel] = Settings
    while parts:
        name = parts.pop(0)
        if model is Settings and name == "suppliers":
            if len(parts) != 2 or parts[0] not in discover():
                return False
            return parts[1] in discover()[parts[0]].settings_model.model_fields
        field = model.model_fields.get(name)
        if field is None:
            return False
        annotation = field.annotation
        if parts:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _expand(value: str) -> str:
    """Compose's ``${VAR:?message}`` as the operator would set it."""
    return re.sub(r"\$\{GATEWAY_ENCRYPTION_KEY[^}]*\}", ENCRYPTION_KEY, value)


def _validate(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("GATEWAY_")]:
        monkeypatch.delenv(key)
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    return Settings()


# ------------------------------------------------------------------- compose


def test_compose_runs_two_gateways_a_worker_redis_aof_and_monitoring() -> None:
    services = compose()["services"]
    assert {"redis", "sandboxes", "gateway-1", "gateway-2", "worker", "prometheus", "grafana"} <= (
        set(services)
    )
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["command"][0] == "serve"
        assert services[name]["environment"]["GATEWAY_ORDERS__INLINE_WORKERS"] == "false"
    assert services["worker"]["command"] == ["worker"]
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync everysec" in redis_cmd
    assert "--maxmemory-policy noeviction" in redis_cmd
    assert any("/data" in v for v in services["redis"]["volumes"])
    grafana_mounts = " ".join(services["grafana"]["volumes"])
    assert "dashboard.json" in grafana_mounts and "provisioning" in grafana_mounts
    prometheus_mounts = " ".join(services["prometheus"]["volumes"])
    assert "alerts.yml" in prometheus_mounts
    for mount in (*services["grafana"]["volumes"], *services["prometheus"]["volumes"]):
        source = mount.split(":")[0]
        if source.startswith("./"):
            assert (DEPLOY / source).exists(), mount


def test_compose_environment_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    for name in ("gateway-1", "worker"):
        env = {k: _expand(str(v)) for k, v in services[name]["environment"].items()}
        unknown = [k for k in env if k.startswith("GATEWAY_") and not setting_exists(k)]
        assert not unknown, f"{name}: no such setting: {unknown}"
        settings = _validate(env, monkeypatch)
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.orders.encryption_keys[0].get_secret_value() == ENCRYPTION_KEY
        for supplier in discover():
            assert settings.supplier_values(supplier).get("base_url"), supplier


def test_compose_points_suppliers_at_the_sandbox_ports() -> None:
    services = compose()["services"]
    command = services["sandboxes"]["command"]
    ports = dict(p.split("=") for p in command if "=" in p)
    env = services["gateway-1"]["environment"]
    for supplier, port in ports.items():
        key = f"GATEWAY_SUPPLIERS__{supplier.upper()}__BASE_URL"
        assert env[key] == f"http://sandboxes:{port}", key
        for field, value in discover()[supplier].sandbox_settings("x").items():
            if field != "base_url":
                assert env[f"GATEWAY_SUPPLIERS__{supplier.upper()}__{field.upper()}"] == value


def test_prometheus_scrapes_every_compose_gateway_and_the_worker() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    worker_port = compose()["services"]["worker"]["environment"]["GATEWAY_HTTP__METRICS_PORT"]
    assert {"gateway-1:8080", "gateway-2:8080", f"worker:{worker_port}"} <= targets


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"COPY {path}: not in the repository"


# ---------------------------------------------------------------- kubernetes


def test_kustomization_lists_every_manifest_and_no_secret_values() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files
    assert not by_kind("Secret"), "real secrets do not belong in the repository"


def test_deployment_probes_resources_and_secret_references() -> None:
    (deployment,) = by_kind("Deployment", "gateway")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > 40 + 5  # grace + preStop
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"gateway-secrets"}
    assert container["envFrom"][0]["configMapRef"]["name"] == "gateway-config"
    (worker,) = by_kind("Deployment", "gateway-worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]


def test_configmap_names_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    (config,) = by_kind("ConfigMap", "gateway-config")
    unknown = [k for k in config["data"] if not setting_exists(k)]
    assert not unknown, unknown
    env = dict(config["data"])
    env["GATEWAY_REDIS_URL"] = "redis://redis:6379/0"
    env["GATEWAY_ORDERS__ENCRYPTION_KEYS"] = json.dumps([ENCRYPTION_KEY])
    settings = _validate(env, monkeypatch)
    assert settings.redis_cluster is True and settings.http.workers == 1
    (deployment,) = by_kind("Deployment", "gateway")
    for entry in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        assert setting_exists(entry["name"]), entry["name"]


def test_selectors_line_up() -> None:
    deployments = {d["metadata"]["name"]: d for d in by_kind("Deployment")}
    services = {s["metadata"]["name"]: s for s in by_kind("Service")}

    def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return selector.items() <= labels.items()

    pod_labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    for name, deployment in deployments.items():
        assert matches(deployment["spec"]["selector"]["matchLabels"], pod_labels[name])
    for service in services.values():
        assert any(matches(service["spec"]["selector"], labels) for labels in pod_labels.values())
        for port in service["spec"]["ports"]:
            container_ports = {
                p["name"]
                for d in deployments.values()
                for c in d["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", ())
            }
            assert port["targetPort"] in container_ports
    for pdb in by_kind("PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(matches(selector, labels) for labels in pod_labels.values())
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    (monitor,) = by_kind("ServiceMonitor")
    selected = [
        s
        for s in services.values()
        if matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    port_names = {p["name"] for s in selected for p in s["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    assert len(selected) == 2  # the API and the workers


# ------------------------------------------------------------ sandbox command


def test_sandbox_command_listens_on_the_given_host_and_ports() -> None:
    names = sorted(discover())
    ports = {name: free_port() for name in names}
    args = [a for name, port in ports.items() for a in ("--port", f"{name}={port}")]
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gateway")), "sandbox", "--host", "127.0.0.1", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for name, port in ports.items():
            deadline = time.monotonic() + 30
            while True:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/_sandbox/faults", timeout=2)
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                    assert time.monotonic() < deadline, f"{name} not on port {port}"
                    time.sleep(0.1)
            assert answer.status_code == 200, name
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    for name, port in ports.items():
        assert f"{name}: http://127.0.0.1:{port}" in output


@pytest.mark.parametrize(
    ("value", "message"), [("vouchers", "NAME=PORT"), ("nobody=9000", "no such supplier")]
)
def test_sandbox_command_refuses_bad_ports(value: str, message: str) -> None:
    from click.testing import CliRunner

    from gateway.cli import main

    result = CliRunner().invoke(main, ["sandbox", "--port", value])
    assert result.exit_code == 2 and message in result.output, result.output
