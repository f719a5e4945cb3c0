from __future__ import annotations

import pytest

from bridge.errors import BridgeError
from bridge.routing import ModelRegistry, credential_from_header
from bridge.settings import load_settings


def registry(**settings) -> ModelRegistry:
    return ModelRegistry(load_settings(env={}, **settings), "http://dify/v1")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer app-abc", "app-abc"), ("bearer  app-abc ", "app-abc"), ("app-abc", "app-abc"),
     ("", None), (None, None), ("Bearer ", "Bearer")],
)
def test_credential_from_header(header, expected):
    assert credential_from_header(header) == expected


def test_passthrough_key_becomes_the_dify_key_for_any_model():
    route = registry().resolve("anything", "app-client")
    assert route.target.api_key == "app-client" and not route.managed
    assert "app-client" not in repr(route)


def test_managed_key_picks_the_configured_app():
    reg = registry(api_keys=["sk-1"], models=[{"id": "o1", "app_key": "app-server"}])
    route = reg.resolve("o1", "sk-1")
    assert route.managed and route.target.api_key == "app-server"


def test_unknown_managed_model_is_404_unless_a_default_is_set():
    reg = registry(api_keys=["sk-1"], models=[{"id": "o1", "app_key": "app-server"}])
    with pytest.raises(BridgeError) as err:
        reg.resolve("gpt-4", "sk-1")
    assert err.value.status == 404 and err.value.code == "model_not_found"
    reg = registry(api_keys=["sk-1"], default_model="o1", models=[{"id": "o1", "app_key": "app-s"}])
    assert reg.resolve("gpt-4", "sk-1").config.id == "o1"


def test_wrong_key_is_401_when_bridge_keys_exist():
    reg = registry(api_keys=["sk-1"], passthrough=False, models=[{"id": "o1", "app_key": "app-s"}])
    for credential in (None, "sk-2", "app-client"):
        with pytest.raises(BridgeError) as err:
            reg.resolve("o1", credential)
        assert err.value.status == 401


def test_passthrough_template_lends_options_not_its_key():
    reg = registry(models=[{"id": "flow", "mode": "workflow", "query_input": "q"}])
    route = reg.resolve("flow", "app-client")
    assert route.config.mode == "workflow" and route.config.query_input == "q"
    assert route.target.api_key == "app-client"


def test_aliases_are_listed_and_resolved():
    reg = registry(api_keys=["k"], aliases={"gpt-4o": "o1"}, models=[{"id": "o1", "app_key": "app-s"}])
    assert reg.listed_ids() == ["o1", "gpt-4o"]
    assert reg.resolve("gpt-4o", "k").target.api_key == "app-s"
