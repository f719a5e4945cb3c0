"""Bad upstream-group configuration stops `dify-bridge serve` with one line naming the field."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.servers import free_port
from tests.support.shipped import REPO, _entry_point, clean_env, upstream_process
from tests.upstreams.helpers import EMULATOR_ARGS, config_file

URL = "http://127.0.0.1:9/v1"


def _serve(config: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_entry_point(), "serve", "--port", str(free_port())],
        env=clean_env(BRIDGE_CONFIG=config, DIFY_API_URL=URL, PYTHONPATH=str(REPO), **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _model(**fields) -> dict:
    return {"id": "o1", **fields}


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (
            _model(balance="fastest", upstreams=[{"app_key": "app-a", "dify_url": URL}]),
            "models[0].balance",
        ),
        (
            _model(upstreams=[{"app_key": "app-a", "dify_url": URL, "weight": 0}]),
            "models[0].upstreams[0].weight",
        ),
        (
            _model(upstreams=[{"app_key": "app-a", "dify_url": URL, "weight": -2}]),
            "models[0].upstreams[0].weight",
        ),
        (_model(upstreams=[]), "models[0].upstreams"),
        (
            _model(app_key="app-x", upstreams=[{"app_key": "app-a"}]),
            "models[0].app_key",
        ),
        (
            _model(upstreams=[{"app_key": "app-a", "dify_url": "ftp://x"}]),
            "models[0].upstreams[0].dify_url",
        ),
    ],
)
def test_bad_group_config_stops_start_up(model, field):
    result = _serve(config_file([model]))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert field in message
    assert "app-a" not in message and "app-x" not in message  # keys never in errors


def test_upstreams_serving_different_modes_stop_start_up():
    with upstream_process("emulator", *EMULATOR_ARGS) as dify:
        config = config_file(
            [
                _model(
                    upstreams=[
                        {"app_key": "app-llmchatflow", "dify_url": dify, "name": "flow"},
                        {"app_key": "app-llmcompletion", "dify_url": dify, "name": "done"},
                    ]
                )
            ]
        )
        result = _serve(config)
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "models[0].upstreams[1].mode" in message
    assert "'o1'" in message and "'done'" in message and "'flow'" in message


def test_env_form_serves_a_group():
    from bridge.settings import load_settings

    settings = load_settings(
        env={
            "BRIDGE_UPSTREAMS": f"app-a@{URL};weight=3, app-b@{URL};priority=1;name=spare",
            "BRIDGE_BALANCE": "least_busy",
        }
    )
    model = settings.models[0]
    assert model.id == "o1"
    assert model.balance == "least_busy"
    assert [(u.weight, u.priority, u.name) for u in model.upstreams] == [
        (3.0, 0, "127.0.0.1:9"),
        (1.0, 1, "spare"),
    ]
