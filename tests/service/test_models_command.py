"""`dify-bridge models` prints the ids `GET /v1/models` lists, in demo mode too (issue 17
item 7: it printed only `o1` while the served bridge listed the emulator's apps)."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.support.servers import free_port
from tests.support.shipped import REPO, _entry_point, clean_env, shipped_bridge

CONFIGURED = {
    "DIFY_API_URL": f"http://127.0.0.1:{free_port()}/v1",  # never called: listing is local
    "DIFY_API_KEY": "app-served-as-o1",
    "BRIDGE_MODEL_ALIASES": "gpt-4o:o1",
}


@pytest.mark.parametrize("settings", [{}, CONFIGURED], ids=["demo", "configured"])
def test_models_command_agrees_with_the_served_list(settings: dict[str, str]) -> None:
    printed = subprocess.run(
        [*_entry_point(), "models"],
        env=clean_env(PYTHONPATH=str(REPO), **settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    dify = settings.get("DIFY_API_URL")
    rest = {k: v for k, v in settings.items() if k != "DIFY_API_URL"}
    with shipped_bridge(dify, **rest) as bridge:
        listed = [m["id"] for m in httpx.get(f"{bridge.v1}/models", timeout=10).json()["data"]]
    assert printed == listed
    assert len(listed) > 1  # demo: o1 and the other sample apps; configured: o1 and its alias
