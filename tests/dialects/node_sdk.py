"""Run a script of tests/node (the openai npm package, the Vercel AI SDK v5 and v6) against a
bridge and read the JSON summary it prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
MODULES = NODE_DIR / "node_modules"


def _major(package: str) -> str | None:
    try:
        manifest = json.loads((MODULES / package / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(manifest.get("version", "")).split(".", 1)[0]


def require_node_packages() -> None:
    """Skip without node; fail when node_modules is missing or older than package.json (an
    earlier checkout's install): scripts/test.sh installs it again from package-lock.json."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    wanted = {"@ai-sdk/openai": "3", "ai": "6", "ai-sdk-openai-v2": "2", "ai-v5": "5"}
    found = {package: _major(package) for package in wanted}
    if found != wanted or _major("openai") is None:
        pytest.fail(
            f"tests/node/node_modules is missing or out of date ({found}): run scripts/test.sh "
            "(it runs npm ci when package-lock.json changed)"
        )


def run_node(script: str, base_url: str, api_key: str, **env: str) -> dict[str, Any]:
    require_node_packages()
    result = subprocess.run(
        ["node", script],
        cwd=NODE_DIR,
        env={**os.environ, "BRIDGE_BASE_URL": f"{base_url}/v1", "BRIDGE_API_KEY": api_key, **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
