"""Settings: every invalid value stops with one message naming the key, the value and what is allowed."""

from __future__ import annotations

import pytest

from infra.settings import SettingsError, load

ACCOUNT = "0123456789abcdef0123456789abcdef"


def test_defaults_follow_the_stack_name() -> None:
    """With only the required keys, names derive from the stack and every default of DESIGN §2 holds."""
    settings, secrets = load({"accountId": ACCOUNT, "providerKeys": '{"openai": ["sk-test-a"]}'}, "Dev_1")
    assert settings.gateway_id == "aigw-dev-1"
    assert settings.worker_name == "aigw-dev-1"
    assert settings.providers == ("openai",)
    assert settings.gateway_url == f"https://gateway.ai.cloudflare.com/v1/{ACCOUNT}/aigw-dev-1"
    assert (settings.cache_ttl, settings.max_attempts, settings.max_body_bytes) == (0, 3, 33554432)
    assert settings.cors_origins == ("*",)
    assert secrets.client_tokens is None and secrets.gateway_token is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, r"aigw:accountId: got nothing; it is required"),
        ({"accountId": "xyz"}, r"aigw:accountId: got 'xyz'; expected 32 lowercase hex"),
        ({"accountId": ACCOUNT}, r"aigw:providerKeys: got nothing; it is required"),
    ],
)
def test_required_keys(raw: dict[str, object], message: str) -> None:
    """A missing or malformed required key names itself."""
    with pytest.raises(SettingsError, match=message):
        load(raw, "dev")
