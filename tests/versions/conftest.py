"""The version matrix: `dify-bridge serve` in front of `dify-bridge emulator --dify-version X`,
both their own processes, one pair per profile (module-scoped, so pytest runs every test of a
profile before starting the next pair)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.recordings import DSL_DIR
from tests.support.shipped import REPO as REPO_ROOT  # noqa: F401  (re-exported)
from tests.support.shipped import ShippedBridge, shipped_bridge, upstream_process

# One per release line the issue names (docs/emulator.md lists what each one changes).
PROFILES = ["0.15.3", "1.0.1", "1.4.3", "1.9.2", "1.12.1", "1.13.0", "1.13.2"]
BRIDGE_KEY = "sk-version-matrix"

# model id → (DSL file, app key). Only these apps are served: emulator start-up counts.
APPS = {
    "chat": ("llm_chat.yml", "app-llmchat"),  # chat app, image upload on
    "flow": ("llm_chatflow.yml", "app-llmchatflow"),
    "upper": ("wf_upper.yml", "app-wf-upper"),  # workflow, required `query`
    "fail": ("fail_chat.yml", "app-failchat"),  # a chatflow whose run fails
    "mod": ("mod_chat.yml", "app-modchat"),  # keyword moderation
    "echo": ("echo_chat.yml", "app-echochat"),  # required input `system_prompt`
    "slow": ("slow_chat.yml", "app-slowchat"),  # a Code node that sleeps 5 s
    "complete": ("llm_completion.yml", "app-llmcompletion"),
}


def write_config(folder: Path, extra: dict[str, str] | None = None) -> Path:
    """A bridge.yaml with one managed model per app, every one `mode: auto`."""
    models = {model: key for model, (_, key) in APPS.items()} | (extra or {})
    lines = ["models:"]
    for model, key in models.items():
        lines += [f"  - id: {model}", f"    app_key: {key}", "    mode: auto"]
    # The same chat app without conversation titles (the per-model `auto_generate_name`).
    lines += ["  - id: chat-untitled", "    app_key: app-llmchat", "    auto_generate_name: false"]
    path = folder / "bridge.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Pair:
    version: str
    dify: str  # the emulator's /v1 base URL
    bridge: ShippedBridge
    config: Path  # the config without the bad-key model (for `dify-bridge check`)


@pytest.fixture(scope="module", params=PROFILES)
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    version = request.param
    with tempfile.TemporaryDirectory(prefix="version-matrix-") as work:
        folder = Path(work)
        dsl = folder / "dsl"
        dsl.mkdir()
        for name, _ in APPS.values():
            shutil.copy(Path(DSL_DIR) / name, dsl / name)
        check_config = write_config(folder)
        (folder / "serve").mkdir()
        serve_config = write_config(folder / "serve", {"badkey": "app-not-a-key"})
        with (
            upstream_process("emulator", "--dify-version", version, "--dsl-dir", str(dsl)) as dify,
            shipped_bridge(
                dify, BRIDGE_API_KEYS=BRIDGE_KEY, BRIDGE_CONFIG=str(serve_config)
            ) as bridge,
        ):
            yield Pair(version, dify, bridge, check_config)
