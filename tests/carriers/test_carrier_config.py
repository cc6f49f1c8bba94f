"""The Telnyx and Plivo settings: secrets from the environment only, formats checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings


def test_carrier_secrets_come_from_the_environment() -> None:
    env = {
        "TELNYX_API_KEY": "KEY1",
        "TELNYX_PUBLIC_KEY": "A" * 43 + "=",
        "PLIVO_AUTH_ID": "MA1",
        "PLIVO_AUTH_TOKEN": "tok",
    }
    settings = load_settings(environ=env)
    assert settings.telnyx_api_key == "KEY1" and settings.plivo_auth_token == "tok"


def test_carrier_secrets_in_a_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text('[gateway]\nplivo_auth_token = "tok"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(config, environ={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TELNYX_PUBLIC_KEY": "not-a-key"}, "TELNYX_PUBLIC_KEY"),
        ({"OVERTALK_TELNYX_CODEC": "OPUS"}, "telnyx_codec"),
        ({"PLIVO_AUTH_ID": "MA1/../x"}, "PLIVO_AUTH_ID"),
        ({"OVERTALK_PLIVO_CONTENT_TYPE": "audio/x-wav"}, "plivo_content_type"),
    ],
)
def test_carrier_settings_with_a_bad_format_stop_the_start(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)
