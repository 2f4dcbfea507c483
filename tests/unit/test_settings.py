"""Settings: every invalid value stops with one message naming the key, the value and the rule."""

from __future__ import annotations

import pytest

from infra.settings import (
    KNOWN_KEYS,
    CustomDomain,
    LogRetention,
    RateLimit,
    SettingsError,
    default_name,
    load,
)

ACCOUNT = "0123456789abcdef0123456789abcdef"
ZONE = "fedcba9876543210fedcba9876543210"
BASE: dict[str, object] = {"accountId": ACCOUNT, "providerKeys": '{"openai": ["sk-test-a"]}'}


def test_defaults_follow_the_stack_name() -> None:
    """With only the required keys, names derive from the stack and DESIGN §2's defaults hold."""
    settings, secrets = load(BASE, "Dev_1")
    assert settings.gateway_id == "aigw-dev-1"
    assert settings.worker_name == "aigw-dev-1"
    assert settings.providers == ("openai",)
    assert settings.gateway_url == f"https://gateway.ai.cloudflare.com/v1/{ACCOUNT}/aigw-dev-1"
    assert (settings.cache_ttl, settings.max_attempts, settings.max_body_bytes) == (0, 3, 33554432)
    assert (settings.cache_invalidate_on_update, settings.collect_logs) == (True, True)
    assert (settings.rate_limit, settings.log_retention, settings.custom_domain) == (None,) * 3
    assert (settings.workers_dev, settings.protect) == (True, False)
    assert settings.cors_origins == ("*",)
    assert secrets.client_tokens is None and secrets.gateway_token is None


def test_every_value_as_pulumi_passes_it() -> None:
    """Text from Pulumi's config (JSON for objects) is decoded into the typed settings."""
    settings, secrets = load(
        {
            "accountId": ACCOUNT,
            "providerKeys": '{"openai": ["sk-test-a", "sk-test-b"], "anthropic": "sk-ant-c"}',
            "clientTokens": '{"laptop": "laptop-token-0123456789"}',
            "gatewayToken": "gateway-token",
            "gatewayId": "team",
            "workerName": "team-worker",
            "cacheTtl": "300",
            "cacheInvalidateOnUpdate": "false",
            "collectLogs": "False",
            "rateLimit": '{"limit": 600, "interval": 60}',
            "logRetention": '{"maxLogs": 20000, "strategy": "DELETE_OLDEST"}',
            "workersDev": "false",
            "customDomain": f'{{"zoneId": "{ZONE}", "hostname": "AI.Example.com"}}',
            "corsOrigins": '["https://chat.example.com", "http://localhost:3000"]',
            "maxAttempts": "5",
            "maxBodyBytes": "1024",
            "protect": "true",
        },
        "prod",
    )
    assert (settings.gateway_id, settings.worker_name) == ("team", "team-worker")
    assert settings.providers == ("openai", "anthropic")
    assert (settings.cache_ttl, settings.cache_invalidate_on_update) == (300, False)
    assert settings.collect_logs is False
    assert settings.rate_limit == RateLimit(600, 60, "fixed")
    assert settings.log_retention == LogRetention(20000, "DELETE_OLDEST")
    assert settings.custom_domain == CustomDomain(ZONE, "ai.example.com")
    assert settings.workers_dev is False and settings.protect is True
    assert settings.cors_origins == ("https://chat.example.com", "http://localhost:3000")
    assert (settings.max_attempts, settings.max_body_bytes) == (5, 1024)
    assert secrets.provider_keys == {
        "openai": ("sk-test-a", "sk-test-b"),
        "anthropic": ("sk-ant-c",),
    }
    assert secrets.client_tokens == {"laptop": "laptop-token-0123456789"}
    assert secrets.gateway_token == "gateway-token"


def test_secrets_stay_out_of_repr() -> None:
    """Printing the secrets object (in a log or a traceback) shows no secret."""
    _, secrets = load(BASE | {"gatewayToken": "gateway-token-x"}, "dev")
    assert "sk-test-a" not in repr(secrets) and "gateway-token-x" not in repr(secrets)


@pytest.mark.parametrize(
    ("stack", "name"),
    [
        ("dev", "aigw-dev"),
        ("Prod_EU", "aigw-prod-eu"),
        ("___", "aigw"),
        ("x" * 80, "aigw-" + "x" * 58),
    ],
)
def test_default_name_fits_cloudflare_names(stack: str, name: str) -> None:
    """Stack names fold into lowercase letters, digits and '-', at most 63 characters."""
    assert default_name(stack) == name


TOKEN = "client-token-0123456789"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # required keys
        ({}, r"^aigw:accountId: got nothing; it is required"),
        ({"accountId": "", "providerKeys": "{}"}, r"^aigw:accountId: got nothing"),
        (BASE | {"accountId": "xyz"}, r"^aigw:accountId: got 'xyz'; expected 32 lowercase hex"),
        (BASE | {"accountId": ACCOUNT.upper()}, r"^aigw:accountId: got '0123456789ABCDEF"),
        ({"accountId": ACCOUNT}, r"^aigw:providerKeys: got nothing; it is required"),
        # provider keys
        (BASE | {"providerKeys": "{}"}, r"^aigw:providerKeys: got an empty object; expected an"),
        (BASE | {"providerKeys": "[]"}, r"^aigw:providerKeys: got a list; expected an object"),
        (BASE | {"providerKeys": "sk-test-a"}, r"^aigw:providerKeys: got a value that is not JSON"),
        (BASE | {"providerKeys": '{"openai": []}'}, r"^aigw:providerKeys\.openai: got an empty"),
        (BASE | {"providerKeys": '{"openai": [""]}'}, r"^aigw:providerKeys\.openai\[0\]: got an"),
        (
            BASE | {"providerKeys": '{"openai": ["sk-test-a", "sk-test-a"]}'},
            r"^aigw:providerKeys\.openai\[1\]: got the same key as providerKeys\.openai\[0\]",
        ),
        (
            BASE | {"providerKeys": '{"openai": ["sk-test-a,sk-test-b"]}'},
            r"^aigw:providerKeys\.openai\[0\]: got a key containing white space or a comma",
        ),
        (
            BASE | {"providerKeys": '{"azure": ["k"]}'},
            r"^aigw:providerKeys: got provider 'azure'; known providers are openai, anthropic, ",
        ),
        # names
        (BASE | {"gatewayId": "Gateway"}, r"^aigw:gatewayId: got 'Gateway'; expected lowercase"),
        (BASE | {"gatewayId": "gw_1"}, r"^aigw:gatewayId: got 'gw_1'"),
        (BASE | {"gatewayId": "gw-"}, r"^aigw:gatewayId: got 'gw-'.*ending with a letter or digit"),
        (BASE | {"gatewayId": "g" * 65}, r"^aigw:gatewayId: got 'g{65}'.*at most 64"),
        (BASE | {"workerName": "w" * 64}, r"^aigw:workerName: got 'w{64}'.*at most 63"),
        # numbers
        (BASE | {"cacheTtl": "-1"}, r"^aigw:cacheTtl: got '-1'; expected a whole number from 0"),
        (BASE | {"cacheTtl": "1.5"}, r"^aigw:cacheTtl: got '1.5'; expected a whole number"),
        (BASE | {"cacheTtl": "2592001"}, r"^aigw:cacheTtl: got '2592001'.* to 2592000"),
        (
            BASE | {"maxAttempts": "0"},
            r"^aigw:maxAttempts: got '0'; expected a whole number from 1",
        ),
        (BASE | {"maxAttempts": "11"}, r"^aigw:maxAttempts: got '11'.* from 1 to 10"),
        (BASE | {"maxBodyBytes": "0"}, r"^aigw:maxBodyBytes: got '0'; expected a whole number"),
        (BASE | {"maxBodyBytes": True}, r"^aigw:maxBodyBytes: got true; expected a whole number"),
        # booleans
        (BASE | {"collectLogs": "yes"}, r"^aigw:collectLogs: got 'yes'; expected true or false"),
        (BASE | {"protect": "1"}, r"^aigw:protect: got '1'; expected true or false"),
        # rate limit
        (BASE | {"rateLimit": "600"}, r"^aigw:rateLimit: got 600; expected an object with"),
        (BASE | {"rateLimit": "{oops"}, r"^aigw:rateLimit: got '\{oops'; expected \{\"limit\""),
        (
            BASE | {"rateLimit": '{"limit": 10}'},
            r"^aigw:rateLimit: got .*\(missing 'interval'\); fields are interval, limit, technique",
        ),
        (
            BASE | {"rateLimit": '{"limit": 10, "interval": 1, "burst": 2}'},
            r"^aigw:rateLimit: got .*\(unknown field 'burst'\)",
        ),
        (
            BASE | {"rateLimit": '{"limit": 0, "interval": 60}'},
            r"^aigw:rateLimit\.limit: got 0; expected a whole number from 1",
        ),
        (
            BASE | {"rateLimit": '{"limit": 10, "interval": 0}'},
            r"^aigw:rateLimit\.interval: got 0; expected a whole number from 1",
        ),
        (
            BASE | {"rateLimit": '{"limit": 10, "interval": 60, "technique": "token-bucket"}'},
            r"^aigw:rateLimit\.technique: got 'token-bucket'; expected 'fixed' or 'sliding'",
        ),
        # log retention
        (
            BASE | {"logRetention": '{"maxLogs": 5}'},
            r"^aigw:logRetention\.maxLogs: got 5; expected a whole number from 10000 to 10000000",
        ),
        (
            BASE | {"logRetention": '{"maxLogs": 20000, "strategy": "delete_oldest"}'},
            r"^aigw:logRetention\.strategy: got 'delete_oldest'; expected 'STOP_INSERTING' or",
        ),
        # custom domain
        (
            BASE | {"customDomain": "ai.example.com"},
            r"^aigw:customDomain: got 'ai.example.com'; expected \{\"zoneId\", \"hostname\"\}",
        ),
        (
            BASE | {"customDomain": '{"zoneId": "zone", "hostname": "ai.example.com"}'},
            r"^aigw:customDomain\.zoneId: got 'zone'; expected 32 lowercase hex digits",
        ),
        (
            BASE | {"customDomain": f'{{"zoneId": "{ZONE}", "hostname": "ai.example.com/v1"}}'},
            r"^aigw:customDomain\.hostname: got 'ai.example.com/v1'; expected a DNS hostname",
        ),
        (
            BASE | {"customDomain": f'{{"zoneId": "{ZONE}", "hostname": "localhost"}}'},
            r"^aigw:customDomain\.hostname: got 'localhost'",
        ),
        (
            BASE | {"workersDev": "false"},
            r"^aigw:workersDev: got false with no customDomain; keep workersDev true or set",
        ),
        # CORS origins
        (BASE | {"corsOrigins": '"*"'}, r"^aigw:corsOrigins: got '\*'; expected a non-empty list"),
        (BASE | {"corsOrigins": "[]"}, r"^aigw:corsOrigins: got \[\]; expected a non-empty list"),
        (
            BASE | {"corsOrigins": '{"origin": "*"}'},
            r"^aigw:corsOrigins: got \{\"origin\": \"\*\"\}; expected a non-empty list",
        ),
        (
            BASE | {"corsOrigins": '["chat.example.com"]'},
            r"^aigw:corsOrigins: got 'chat.example.com'; expected \"\*\" or an origin",
        ),
        # client tokens
        (BASE | {"clientTokens": "{}"}, r"^aigw:clientTokens: got an empty object; expected an"),
        (BASE | {"clientTokens": f'["{TOKEN}"]'}, r"^aigw:clientTokens: got a list; expected"),
        (
            BASE | {"clientTokens": '{"laptop": "short-token"}'},
            r"^aigw:clientTokens\.laptop: got a token shorter than 16 characters; use at least 16",
        ),
        (
            BASE | {"clientTokens": '{"laptop": 1234567890123456789}'},
            r"^aigw:clientTokens\.laptop: got a number instead of text; set the token as a string",
        ),
        (
            BASE | {"clientTokens": f'{{"my laptop": "{TOKEN}"}}'},
            r"^aigw:clientTokens: got client name 'my laptop'; names are 1-64 letters",
        ),
        (
            BASE | {"clientTokens": f'{{"a:b": "{TOKEN}"}}'},
            r"^aigw:clientTokens: got client name 'a:b'",
        ),
        (
            BASE | {"clientTokens": '{"laptop": "client token 0123456789"}'},
            r"^aigw:clientTokens\.laptop: got a token containing white space or a comma",
        ),
        (
            BASE | {"clientTokens": f'{{"a": "{TOKEN}", "b": "{TOKEN}"}}'},
            r"^aigw:clientTokens\.b: got the same token as clientTokens\.a; each client needs",
        ),
        # gateway token
        (BASE | {"gatewayToken": " "}, r"^aigw:gatewayToken: got an empty value or one with white"),
        # unknown keys
        (BASE | {"rateLimits": "{}"}, r"^aigw:rateLimits: got a key aigw does not know; known"),
        (BASE | {"accountID": ACCOUNT}, r"^aigw:accountID: got a key aigw does not know"),
    ],
)
def test_invalid_value_names_key_value_and_rule(raw: dict[str, object], message: str) -> None:
    """Each invalid value raises one SettingsError that names the key, the value and the rule."""
    with pytest.raises(SettingsError, match=message) as raised:
        load(raw, "dev")
    assert len(str(raised.value).splitlines()) == 1


@pytest.mark.parametrize(
    "raw",
    [
        BASE | {"providerKeys": '{"openai": ["sk-test-secret key"]}'},
        BASE | {"providerKeys": "sk-test-secret"},
        BASE | {"providerKeys": '{"openai": ["sk-test-secret", "sk-test-secret"]}'},
        BASE | {"clientTokens": '{"laptop": "sk-test-secret"}'},
        BASE | {"clientTokens": '{"a": "sk-test-secret-0123", "b": "sk-test-secret-0123"}'},
        BASE | {"gatewayToken": "sk-test-secret token"},
    ],
)
def test_messages_about_secrets_never_contain_them(raw: dict[str, object]) -> None:
    """A refused secret value is described ("a key containing…"), never echoed."""
    with pytest.raises(SettingsError) as raised:
        load(raw, "dev")
    assert "sk-test-secret" not in str(raised.value)


def test_unknown_key_message_lists_every_known_key() -> None:
    """The unknown-key message lists all settings, so a typo is easy to fix."""
    with pytest.raises(SettingsError) as raised:
        load(BASE | {"cachettl": "1"}, "dev")
    assert all(key in str(raised.value) for key in KNOWN_KEYS)
