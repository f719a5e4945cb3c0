"""The Kubernetes ServiceMonitor scrapes `/metrics` with the key the Deployment gives the
bridge as BRIDGE_METRICS_KEY (issue 17 item 6: `/metrics` needs a key once keys exist)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tests.scaling.test_kubernetes import KUBERNETES, bridge_container, documents, kustomize


def test_the_service_monitor_sends_the_metrics_key_the_bridge_reads(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(KUBERNETES / "overlays" / "redis", tmp_path)],
                "components": [
                    os.path.relpath(KUBERNETES / "components" / "servicemonitor", tmp_path)
                ],
            }
        )
    )
    docs = documents(kustomize(tmp_path))
    (endpoint,) = docs[("ServiceMonitor", "dify-bridge")]["spec"]["endpoints"]
    env = {e["name"]: e for e in bridge_container(docs)["env"]}

    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["type"] == "Bearer"
    reference = env["BRIDGE_METRICS_KEY"]["valueFrom"]["secretKeyRef"]
    assert "value" not in env["BRIDGE_METRICS_KEY"]
    assert endpoint["authorization"]["credentials"] == {
        "name": reference["name"],
        "key": reference["key"],
    }
