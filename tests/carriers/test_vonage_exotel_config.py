"""The Vonage and Exotel settings: secrets from the environment only, checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings


def test_vonage_and_exotel_secrets_come_from_the_environment(tmp_path: Path) -> None:
    key = tmp_path / "vonage.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n")
    env = {
        "VONAGE_SIGNATURE_SECRET": "s" * 32,
        "VONAGE_APPLICATION_ID": "app",
        "VONAGE_PRIVATE_KEY": str(key),
        "EXOTEL_API_KEY": "k",
        "EXOTEL_API_TOKEN": "t",
        "OVERTALK_VONAGE_RATE": "16000",
    }
    settings = load_settings(environ=env)
    assert settings.vonage_private_key == str(key) and settings.vonage_rate == 16000
    assert (settings.exotel_api_key, settings.exotel_api_token) == ("k", "t")
    config = tmp_path / "gw.toml"
    config.write_text('[gateway]\nvonage_signature_secret = "s"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(config, environ={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OVERTALK_VONAGE_RATE": "24000"}, "vonage_rate"),
        ({"VONAGE_APPLICATION_ID": "app"}, "go together"),
        ({"VONAGE_APPLICATION_ID": "app", "VONAGE_PRIVATE_KEY": "/no/such.key"}, "PEM"),
        ({"EXOTEL_API_TOKEN": "t"}, "go together"),
    ],
)
def test_vonage_and_exotel_settings_with_a_bad_value_stop_the_start(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)
