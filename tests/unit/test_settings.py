from __future__ import annotations

import pytest

from bridge.settings import ConfigError, load_settings


def test_defaults_listen_on_loopback_only():
    settings = load_settings(env={})
    assert settings.host == "127.0.0.1"
    assert settings.passthrough is True
    assert settings.demo_mode


def test_env_overrides_file(tmp_path):
    config = tmp_path / "bridge.yaml"
    config.write_text("port: 9000\nmodels:\n  - id: o1\n    app_key: ${MY_KEY}\n    mode: workflow\n")
    settings = load_settings(config, env={"MY_KEY": "app-secret", "BRIDGE_PORT": "9100",
                                          "BRIDGE_API_KEYS": "a, b,", "BRIDGE_MODEL_ALIASES": "gpt-4o:o1"})
    assert settings.port == 9100
    assert settings.api_keys == ["a", "b"]
    assert settings.aliases == {"gpt-4o": "o1"}
    assert settings.models[0].app_key == "app-secret"
    assert settings.models[0].mode == "workflow"


def test_secrets_never_show_in_repr():
    settings = load_settings(env={"BRIDGE_API_KEYS": "sk-very-secret"},
                             models=[{"id": "o1", "app_key": "app-topsecret"}])
    assert "secret" not in repr(settings) and "topsecret" not in repr(settings.models[0])


@pytest.mark.parametrize(
    ("yaml_text", "env", "field"),
    [
        ("port: nope\n", {}, "port"),
        ("models:\n  - id: o1\n    mode: chatty\n", {}, "models[0].mode"),
        ("models:\n  - id: o1\n    app_key: ${UNSET_VAR}\n", {}, "UNSET_VAR"),
        ("models:\n  - id: o1\n    colour: red\n", {}, "colour"),
        ("models:\n  - id: o1\n  - id: o1\n", {}, "models[1].id"),
        ("dify_api_url: ftp://x\n", {}, "dify_api_url"),
        ("", {"BRIDGE_PASSTHROUGH": "maybe"}, "BRIDGE_PASSTHROUGH"),
        ("", {"BRIDGE_PORT": "70000"}, "port"),
        ("- a\n- b\n", {}, "mapping"),
    ],
)
def test_a_wrong_config_names_the_field(tmp_path, yaml_text, env, field):
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_settings(config, env=env)
    assert field in str(err.value)
    assert "\n" not in str(err.value)
