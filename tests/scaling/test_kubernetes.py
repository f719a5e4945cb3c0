"""deploy/kubernetes (issue 13): the overlays render with `kubectl kustomize`, validate against
the schemas of a current Kubernetes, hold what the issue asks of them, and scan clean with
checkov (every skipped check names its reason in the manifest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["redis", "external-redis"]
BIN = Path(sys.executable).parent
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".cache" / "checkov-venv" / "bin" / "checkov"))
PRESTOP_SECONDS = 5


def kustomize(path: Path) -> str:
    result = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(rendered: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("rendered")
    files = {}
    for overlay in OVERLAYS:
        files[overlay] = out / f"{overlay}.yaml"
        files[overlay].write_text(kustomize(KUBERNETES / "overlays" / overlay))
    return files


def bridge_container(docs: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    deployment = docs[("Deployment", "dify-bridge")]
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_current_kubernetes_schemas(
    rendered: dict[str, Path], overlay: str
) -> None:
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(rendered[overlay])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployment_is_hardened_probed_and_drains_within_its_grace(
    rendered: dict[str, Path], overlay: str
) -> None:
    docs = documents(rendered[overlay].read_text())
    deployment = docs[("Deployment", "dify-bridge")]
    pod = deployment["spec"]["template"]["spec"]
    container = bridge_container(docs)
    env = {e["name"]: e for e in container["env"]}

    assert deployment["metadata"]["namespace"] == "dify-bridge"
    assert deployment["spec"]["replicas"] >= 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PRESTOP_SECONDS)]
    grace = float(env["BRIDGE_SHUTDOWN_GRACE"]["value"])
    assert grace >= Settings().shutdown_grace
    # Kubernetes' clock starts before preStop; SIGKILL must come after the bridge's drain.
    assert pod["terminationGracePeriodSeconds"] > PRESTOP_SECONDS + grace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_the_issue_lists_is_there(rendered: dict[str, Path], overlay: str) -> None:
    docs = documents(rendered[overlay].read_text())
    kinds = {kind for kind, _ in docs}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "NetworkPolicy",
        "ServiceAccount",
    } <= kinds
    hpa = docs[("HorizontalPodAutoscaler", "dify-bridge")]
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["scaleTargetRef"]["name"] == "dify-bridge"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keys_come_from_secrets_by_reference_only(rendered: dict[str, Path], overlay: str) -> None:
    docs = documents(rendered[overlay].read_text())
    assert not [name for kind, name in docs if kind == "Secret"]
    env = {e["name"]: e for e in bridge_container(docs)["env"]}
    for name in ("BRIDGE_API_KEYS", "DIFY_API_KEY", "DIFY_API_URL"):
        assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_config_map_is_a_bridge_config_the_bridge_accepts(
    rendered: dict[str, Path], overlay: str, tmp_path: Path
) -> None:
    docs = documents(rendered[overlay].read_text())
    (config_map,) = [d for (kind, _), d in docs.items() if kind == "ConfigMap"]
    config = tmp_path / "bridge.yaml"
    config.write_text(config_map["data"]["bridge.yaml"])
    volume = next(
        v
        for v in docs[("Deployment", "dify-bridge")]["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "config"
    )
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]

    settings = load_settings(config, env={"DIFY_API_URL": "http://dify.internal/v1"})

    assert settings.limits.enabled


def test_the_redis_overlay_runs_one_password_protected_redis_reachable_only_by_the_bridge(
    rendered: dict[str, Path],
) -> None:
    docs = documents(rendered["redis"].read_text())
    redis = docs[("StatefulSet", "dify-bridge-redis")]
    assert redis["spec"]["replicas"] == 1
    assert "--requirepass" in redis["spec"]["template"]["spec"]["containers"][0]["args"]
    env = {e["name"]: e for e in bridge_container(docs)["env"]}
    assert env["BRIDGE_STORE"]["value"].startswith("redis://:$(REDIS_PASSWORD)@dify-bridge-redis:")
    # The variable it expands is defined before it (Kubernetes expands in order).
    names = [e["name"] for e in bridge_container(docs)["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("BRIDGE_STORE")
    policy = docs[("NetworkPolicy", "dify-bridge-redis")]
    (allowed,) = policy["spec"]["ingress"]
    assert (
        allowed["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "bridge"
    )


def test_the_external_redis_overlay_takes_the_store_url_from_a_secret(
    rendered: dict[str, Path],
) -> None:
    docs = documents(rendered["external-redis"].read_text())
    env = {e["name"]: e for e in bridge_container(docs)["env"]}
    assert env["BRIDGE_STORE"]["valueFrom"]["secretKeyRef"] == {
        "name": "dify-bridge-redis",
        "key": "url",
    }
    assert not [name for kind, name in docs if kind == "StatefulSet"]


def test_the_optional_service_monitor_composes_with_an_overlay(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes relative paths only (going up is fine).
                "resources": [os.path.relpath(KUBERNETES / "overlays" / "redis", tmp_path)],
                "components": [
                    os.path.relpath(KUBERNETES / "components" / "servicemonitor", tmp_path)
                ],
            }
        )
    )
    docs = documents(kustomize(tmp_path))
    monitor = docs[("ServiceMonitor", "dify-bridge")]
    service = docs[("Service", "dify-bridge")]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.slow
def test_checkov_finds_nothing_and_every_skip_has_a_written_reason(
    rendered: dict[str, Path],
) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"checkov not found at {CHECKOV}: scripts/test.sh installs it in its own venv")
    command = [str(CHECKOV), "--framework", "kubernetes", "--skip-download", "-o", "json"]
    for path in rendered.values():
        command += ["-f", str(path)]
    # No network: checkov would otherwise try to fetch guidelines from its vendor.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    assert [(c["check_id"], c["resource"]) for c in failed] == []
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert skipped, "the skips in the manifests were not seen"
    for check in skipped:
        assert len(check["check_result"]["suppress_comment"].split()) >= 5, check
    assert sum(r["summary"]["passed"] for r in reports) > 100
