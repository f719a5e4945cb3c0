"""`dify-bridge check` against the emulator: one table row per managed model, exit code 1 when
any model fails, and never a key in the output."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from bridge.cli import main
from tests.service.conftest import BAD_KEY, CAT_KEY


def run_check(tmp_path: Path, emulator_url: str, models: list[dict[str, str]]):
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump({"models": models}), encoding="utf-8")
    env = {"DIFY_API_URL": f"{emulator_url}/v1", "BRIDGE_STORE": "memory://"}
    return CliRunner().invoke(main, ["check", "--config", str(config)], env=env)


def row(output: str, model: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(model + " "))


def test_check_reports_a_good_model_and_a_rejected_key_and_fails(tmp_path, emulator_url):
    result = run_check(
        tmp_path,
        emulator_url,
        [
            {"id": "o1", "app_key": CAT_KEY, "mode": "advanced-chat"},
            {"id": "broken", "app_key": BAD_KEY},
        ],
    )
    assert result.exit_code == 1
    good, bad = row(result.output, "o1"), row(result.output, "broken")
    assert "Cat_LLM" in good and "advanced-chat → advanced-chat" in good and "ok" in good
    assert "key rejected (HTTP 401)" in bad
    assert CAT_KEY not in result.output and BAD_KEY not in result.output


def test_check_lists_inputs_marking_the_required_ones_and_passes(tmp_path, emulator_url):
    result = run_check(
        tmp_path,
        emulator_url,
        [{"id": "slow", "app_key": "app-slowchat"}, {"id": "upper", "app_key": "app-wf-upper"}],
    )
    assert result.exit_code == 0, result.output
    assert "sleep" in row(result.output, "slow") and "sleep*" not in row(result.output, "slow")
    upper = row(result.output, "upper")
    assert "auto → workflow" in upper and "*" in upper.split("auto → workflow")[1]


def test_check_flags_a_configured_mode_that_is_not_the_apps_mode(tmp_path, emulator_url):
    result = run_check(tmp_path, emulator_url, [{"id": "o1", "app_key": CAT_KEY, "mode": "chat"}])
    assert result.exit_code == 1
    assert "MISMATCH" in row(result.output, "o1")


def test_check_fails_when_dify_is_down(tmp_path):
    result = run_check(tmp_path, "http://127.0.0.1:9", [{"id": "o1", "app_key": CAT_KEY}])
    assert result.exit_code == 1
    assert "Dify unreachable" in row(result.output, "o1")
