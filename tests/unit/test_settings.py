"""Settings: every invalid value stops with one message naming the key, the value and the rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.client_policies import Budget, ClientPolicy, ClientRateLimit, rate_limit_binding
from infra.providers import secret_values
from infra.setting_forms import KNOWN_KEYS, MAX_SPEND_LIMIT_RULES
from infra.settings import (
    CustomDomain,
    LogRetention,
    RateLimit,
    SettingsError,
    client_names,
    default_name,
    generated_clients,
    load,
    policy_of,
    rate_limit_bindings,
    spend_limit_rules,
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
    assert settings.scalars["cacheScope"] == "client"
    assert (settings.cache_invalidate_on_update, settings.collect_logs) == (True, True)
    assert (settings.rate_limit, settings.log_retention, settings.custom_domain) == (None,) * 3
    assert (settings.workers_dev, settings.protect) == (True, False)
    assert settings.cors_origins == ("*",)
    assert dict(secrets.client_tokens) == {} and secrets.gateway_token is None
    assert (dict(settings.clients), settings.budget) == ({}, None)
    assert generated_clients(settings, secrets) == ("default",)


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
            "cacheScope": "shared",
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
    assert settings.scalars["cacheScope"] == "shared"
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
    assert secrets.client_tokens == {"laptop": ("laptop-token-0123456789",)}
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
        (BASE | {"cacheScope": "global"}, r"^aigw:cacheScope: got 'global'; expected one of 'cl"),
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
        (
            BASE | {"clientTokens": '{"laptop": []}'},
            r"^aigw:clientTokens\.laptop: got an empty list; expected a token, or a list of one",
        ),
        (
            BASE | {"clientTokens": f'{{"laptop": ["{TOKEN}", "short-token"]}}'},
            r"^aigw:clientTokens\.laptop\[1\]: got a token shorter than 16 characters",
        ),
        (
            BASE | {"clientTokens": f'{{"laptop": ["{TOKEN}", "{TOKEN}"]}}'},
            r"^aigw:clientTokens\.laptop\[1\]: got the same token as clientTokens\.laptop\[0\]",
        ),
        (
            BASE
            | {"clientTokens": f'{{"a": "{TOKEN}", "b": ["other-token-0123456789", "{TOKEN}"]}}'},
            r"^aigw:clientTokens\.b\[1\]: got the same token as clientTokens\.a;",
        ),
        # client policies
        (
            BASE | {"clients": '["alice"]'},
            r'^aigw:clients: got \["alice"\]; expected an object of policies',
        ),
        (
            BASE | {"clients": '{"al ice": {}}'},
            r"^aigw:clients: got client name 'al ice'; names are 1-64 letters.*, or \"\*\"",
        ),
        (
            BASE | {"clients": '{"alice": {"model": ["gpt-4o"]}}'},
            r"^aigw:clients\.alice: got .*\(unknown field 'model'\); fields are budget, endpoints, "
            r"expires, models, providers, rateLimit",
        ),
        (
            BASE | {"clients": '{"alice": "gpt-4o"}'},
            r"^aigw:clients\.alice: got 'gpt-4o'; expected an object with budget, endpoints, "
            r"expires",
        ),
        (
            BASE | {"clients": '{"alice": {"models": ["m"], "endpoints": []}}'},
            r"^aigw:clients\.alice\.endpoints: got \[\]; expected a non-empty list such as "
            r'\["GET /v1/files/\*"\]',
        ),
        (
            BASE | {"clients": '{"alice": {"models": ["m"], "endpoints": ["PUT /v1/files"]}}'},
            r"^aigw:clients\.alice\.endpoints\[0\]: got 'PUT /v1/files'; expected \"METHOD "
            r"/path-glob\": METHOD one of GET, POST, DELETE, \*",
        ),
        (
            BASE | {"clients": '{"alice": {"models": ["m"], "endpoints": ["GET v1/files"]}}'},
            r"^aigw:clients\.alice\.endpoints\[0\]: got 'GET v1/files'; expected \"METHOD ",
        ),
        (
            BASE | {"clients": '{"alice": {"models": ["m"], "endpoints": ["GET /v1/files?x=1"]}}'},
            r"^aigw:clients\.alice\.endpoints\[0\]: got 'GET /v1/files\?x=1'; .* without "
            r"spaces, \? or #",
        ),
        (
            BASE | {"clients": '{"alice": {"models": ["m"], "endpoints": ["GET /files/*"]}}'},
            r"^aigw:clients\.alice\.endpoints\[0\]: got 'GET /files/\*'; the path starts with "
            r"/v1/ \(or /openai/\) for OpenAI, or /<provider>/ for another provider with keys "
            r"\(there is none\)",
        ),
        (
            BASE | {"clients": '{"alice": {"endpoints": ["GET /v1/files/*"]}}'},
            r"^aigw:clients\.alice\.endpoints: got \[\"GET /v1/files/\*\"\] for a client "
            r"without a limit; endpoints opens endpoints to a client with models, providers, "
            r"rateLimit or budget",
        ),
        (
            BASE | {"clientGatewayHeaders": '"cf-aig-skip-cache"'},
            r"^aigw:clientGatewayHeaders: got 'cf-aig-skip-cache'; expected a list of cf-aig-\* "
            r"header names",
        ),
        (
            BASE | {"clientGatewayHeaders": '["x-custom"]'},
            r"^aigw:clientGatewayHeaders\[0\]: got 'x-custom'; expected an AI Gateway header "
            r"name: cf-aig-<name>",
        ),
        (
            BASE | {"clientGatewayHeaders": '["cf-aig-skip-cache", "cf-aig-custom-cost"]'},
            r"^aigw:clientGatewayHeaders\[1\]: got 'cf-aig-custom-cost', a cost control; cost, "
            r"logging, retries, routing, BYOK, authorization and metadata controls are the "
            r"operator's",
        ),
        (
            BASE | {"clientGatewayHeaders": '["CF-AIG-Collect-Log"]'},
            r"^aigw:clientGatewayHeaders\[0\]: got 'CF-AIG-Collect-Log', a logging control",
        ),
        (
            BASE | {"clientGatewayHeaders": '["cf-aig-metadata"]'},
            r"^aigw:clientGatewayHeaders\[0\]: got 'cf-aig-metadata', a metadata control",
        ),
        (
            BASE | {"clients": '{"alice": {"models": []}}'},
            r"^aigw:clients\.alice\.models: got \[\]; expected a non-empty list",
        ),
        (
            BASE | {"clients": '{"alice": {"models": "gpt-4o"}}'},
            r"^aigw:clients\.alice\.models: got 'gpt-4o'; expected a non-empty list",
        ),
        (
            BASE | {"clients": '{"alice": {"models": ["gpt-4o", "gpt 4"]}}'},
            r"^aigw:clients\.alice\.models\[1\]: got 'gpt 4'; expected a model name or a glob",
        ),
        (
            BASE | {"clients": '{"alice": {"providers": ["openia"]}}'},
            r"^aigw:clients\.alice\.providers\[0\]: got 'openia'; known providers are openai, ",
        ),
        (
            BASE | {"clients": '{"*": {"providers": ["openai", "anthropic"]}}'},
            r"^aigw:clients\.\*\.providers\[1\]: got 'anthropic', which has no keys in "
            r"aigw:providerKeys; providers with keys are openai$",
        ),
        (
            BASE | {"clients": '{"alice": {"providers": []}}'},
            r"^aigw:clients\.alice\.providers: got \[\]; expected a non-empty list",
        ),
        (
            BASE | {"clients": '{"alice": {"rateLimit": {"limit": 10, "period": 30}}}'},
            r"^aigw:clients\.alice\.rateLimit\.period: got 30; expected 10 or 60 \(seconds\)",
        ),
        (
            BASE | {"clients": '{"alice": {"rateLimit": {"limit": 0, "period": 60}}}'},
            r"^aigw:clients\.alice\.rateLimit\.limit: got 0; expected a whole number from 1",
        ),
        (
            BASE | {"clients": '{"alice": {"rateLimit": {"limit": 1.5, "period": 60}}}'},
            r"^aigw:clients\.alice\.rateLimit\.limit: got 1\.5; expected a whole number from 1",
        ),
        (
            BASE | {"clients": '{"alice": {"rateLimit": {"limit": 10}}}'},
            r"^aigw:clients\.alice\.rateLimit: got .*\(missing 'period'\); fields are limit, "
            r"period",
        ),
        (
            BASE | {"clients": '{"alice": {"budget": {"limit": 0, "window": 86400}}}'},
            r"^aigw:clients\.alice\.budget\.limit: got 0; expected an amount of US dollars greater",
        ),
        (
            BASE | {"clients": '{"alice": {"budget": {"limit": "ten", "window": 86400}}}'},
            r"^aigw:clients\.alice\.budget\.limit: got 'ten'; expected an amount of US dollars",
        ),
        (
            BASE | {"clients": '{"alice": {"budget": {"limit": 5, "window": 59}}}'},
            r"^aigw:clients\.alice\.budget\.window: got 59; expected a whole number from 60 to",
        ),
        (
            BASE
            | {"clients": '{"alice": {"budget": {"limit": 5, "window": 60, "technique": "x"}}}'},
            r"^aigw:clients\.alice\.budget\.technique: got 'x'; expected 'fixed' or 'sliding'",
        ),
        (
            BASE | {"clients": '{"alice": {"expires": "31/12/2026"}}'},
            r"^aigw:clients\.alice\.expires: got '31/12/2026'; expected an ISO 8601 date such as "
            r"2026-12-31 \(its start, 00:00 UTC\) or date-time",
        ),
        (
            BASE | {"clients": '{"alice": {"expires": "2026-02-30"}}'},
            r"^aigw:clients\.alice\.expires: got '2026-02-30'; expected an ISO 8601 date",
        ),
        (
            BASE | {"clients": '{"alice": {"expires": 20261231}}'},
            r"^aigw:clients\.alice\.expires: got 20261231; expected an ISO 8601 date",
        ),
        # gateway budget
        (BASE | {"budget": "100"}, r"^aigw:budget: got 100; expected an object with limit"),
        (
            BASE | {"budget": '{"limit": -1, "window": 86400}'},
            r"^aigw:budget\.limit: got -1; expected an amount of US dollars greater than 0",
        ),
        (
            BASE | {"budget": '{"limit": "NaN", "window": 86400}'},
            r"^aigw:budget\.limit: got 'NaN'; expected an amount of US dollars",
        ),
        (
            BASE | {"budget": '{"limit": 100, "window": "daily"}'},
            r"^aigw:budget\.window: got 'daily'; expected a whole number from 60 to",
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
        BASE | {"clientTokens": '{"laptop": ["sk-test-secret-0123", "sk-test-secret-0123"]}'},
        BASE | {"clientTokens": '{"laptop": ["sk-test-secret-0123", "sk-test-secret"]}'},
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


POLICIES = """{
    "alice": {
        "models": ["gpt-4o", "claude-*"],
        "providers": ["openai", "anthropic"],
        "rateLimit": {"limit": 100, "period": 60},
        "budget": {"limit": 25, "window": 86400, "technique": "sliding"},
        "expires": "2026-12-31"
    },
    "ci": {"rateLimit": {"limit": "5", "period": "10"}, "budget": {"limit": "2.5", "window": 3600}},
    "guest": null,
    "*": {"models": ["*-mini"], "rateLimit": {"limit": 100, "period": 60}, "expires":
        "2026-06-01T18:30:00+02:00"}
}"""
TWO_PROVIDERS = '{"openai": ["sk-test-a"], "anthropic": ["sk-ant-test-b"]}'


def test_client_policies_are_typed() -> None:
    """Every policy field is read into its type; numbers may come as text, a null entry is {}."""
    settings, _ = load(BASE | {"providerKeys": TWO_PROVIDERS, "clients": POLICIES}, "dev")
    assert list(settings.clients) == ["alice", "ci", "guest", "*"]
    assert settings.clients["alice"] == ClientPolicy(
        models=("gpt-4o", "claude-*"),
        providers=("openai", "anthropic"),
        rate_limit=ClientRateLimit(limit=100, period=60),
        budget=Budget(limit=25.0, window=86400, technique="sliding"),
        expires=datetime(2026, 12, 31, tzinfo=UTC),
    )
    assert settings.clients["ci"] == ClientPolicy(
        rate_limit=ClientRateLimit(5, 10), budget=Budget(2.5, 3600, "fixed")
    )
    assert settings.clients["guest"] == ClientPolicy()
    assert settings.clients["*"].expires == datetime(2026, 6, 1, 16, 30, tzinfo=UTC)


def test_endpoints_are_method_and_glob_pairs_with_openai_as_v1() -> None:
    """Each endpoints entry is kept as (method, glob); an /openai/ glob is the /v1/ path clients
    send, so both spellings open the same endpoints."""
    endpoints = '["GET /v1/files/*", "* /openai/batches", "DELETE /anthropic/v1/files/*"]'
    settings, _ = load(
        BASE
        | {
            "providerKeys": TWO_PROVIDERS,
            "clients": f'{{"alice": {{"models": ["gpt-4o"], "endpoints": {endpoints}}}}}',
        },
        "dev",
    )
    assert settings.clients["alice"].endpoints == (
        ("GET", "/v1/files/*"),
        ("*", "/v1/batches"),
        ("DELETE", "/anthropic/v1/files/*"),
    )


def test_client_gateway_headers_default_to_the_cache_controls() -> None:
    """Unset, clients may send the three cache controls; a list is lower-cased and deduplicated,
    and [] lets clients send none."""
    assert load(BASE, "dev")[0].client_gateway_headers == (
        "cf-aig-skip-cache",
        "cf-aig-cache-ttl",
        "cf-aig-cache-key",
    )
    given = '["CF-AIG-Skip-Cache", "cf-aig-event-id", "cf-aig-skip-cache"]'
    settings, _ = load(BASE | {"clientGatewayHeaders": given}, "dev")
    assert settings.client_gateway_headers == ("cf-aig-skip-cache", "cf-aig-event-id")
    assert load(BASE | {"clientGatewayHeaders": "[]"}, "dev")[0].client_gateway_headers == ()


def test_client_policies_cannot_be_changed() -> None:
    """Settings.clients and Secrets.client_tokens are read-only, so no code can widen a policy."""
    settings, secrets = load(
        BASE | {"providerKeys": TWO_PROVIDERS, "clients": POLICIES},
        "dev",
    )
    with pytest.raises(TypeError):
        settings.clients["bob"] = ClientPolicy()  # type: ignore[index]  # the point: it refuses
    with pytest.raises(TypeError):
        secrets.client_tokens["bob"] = (TOKEN,)  # type: ignore[index]  # the point: it refuses


@pytest.mark.parametrize(
    ("given", "moment"),
    [
        ("2026-12-31", datetime(2026, 12, 31, 0, 0, tzinfo=UTC)),
        ("2026-12-31T18:00", datetime(2026, 12, 31, 18, 0, tzinfo=UTC)),
        ("2026-12-31T18:00:00Z", datetime(2026, 12, 31, 18, 0, tzinfo=UTC)),
        ("2026-12-31T18:00:00-05:00", datetime(2026, 12, 31, 23, 0, tzinfo=UTC)),
        ("2027-01-01T01:00:00+02:00", datetime(2026, 12, 31, 23, 0, tzinfo=UTC)),
    ],
)
def test_expiry_is_a_utc_moment(given: str, moment: datetime) -> None:
    """A date means its start in UTC; a date-time without offset is UTC; offsets are honoured."""
    settings, _ = load(BASE | {"clients": f'{{"alice": {{"expires": "{given}"}}}}'}, "dev")
    expires = settings.clients["alice"].expires
    # Compared as text: aware datetimes in different zones compare equal, but render differently.
    assert expires is not None and expires.isoformat() == moment.isoformat()


def test_own_policy_replaces_the_star_policy() -> None:
    """A client with an entry gets only that entry; one without gets "*"; none at all gets None."""
    settings, _ = load(BASE | {"clients": '{"ci": {}, "*": {"models": ["gpt-4o-mini"]}}'}, "dev")
    assert policy_of(settings, "ci") == ClientPolicy()
    assert policy_of(settings, "laptop") == ClientPolicy(models=("gpt-4o-mini",))
    settings, _ = load(BASE | {"clients": '{"ci": {}}'}, "dev")
    assert policy_of(settings, "laptop") is None


def test_rotating_tokens_each_get_a_binding_entry() -> None:
    """A client holding a list of tokens appears once per token in CLIENT_TOKENS."""
    _, secrets = load(
        BASE
        | {
            "clientTokens": '{"laptop": ["old-token-0123456789", "new-token-0123456789"], '
            '"ci": "ci-token-0123456789"}'
        },
        "dev",
    )
    assert secrets.client_tokens == {
        "laptop": ("old-token-0123456789", "new-token-0123456789"),
        "ci": ("ci-token-0123456789",),
    }
    bindings = secret_values(secrets.provider_keys, secrets.client_tokens, None)
    assert bindings["CLIENT_TOKENS"].split("\n") == [
        "laptop:old-token-0123456789",
        "laptop:new-token-0123456789",
        "ci:ci-token-0123456789",
    ]


def test_clients_without_a_token_get_generated_ones() -> None:
    """Clients named in `clients` (not "*") without a token are generated; `default` only when
    nothing names a client."""
    settings, secrets = load(
        BASE
        | {
            "clientTokens": f'{{"laptop": "{TOKEN}"}}',
            "clients": '{"ci": {}, "laptop": {}, "*": {}}',
        },
        "dev",
    )
    assert client_names(settings, secrets) == ("laptop", "ci")
    assert generated_clients(settings, secrets) == ("ci",)
    settings, secrets = load(BASE | {"clients": '{"*": {"models": ["gpt-4o"]}}'}, "dev")
    assert generated_clients(settings, secrets) == ("default",)
    settings, secrets = load(BASE | {"clientTokens": f'{{"laptop": "{TOKEN}"}}'}, "dev")
    assert generated_clients(settings, secrets) == ()


def test_spend_limit_rules_one_per_budget() -> None:
    """Each client's budget is a rule, "*" gives one to each client without an entry, and the
    gateway budget is one more (keyed None)."""
    settings, secrets = load(
        BASE
        | {
            "clientTokens": f'{{"laptop": "{TOKEN}", "ci": "ci-token-0123456789"}}',
            "clients": '{"alice": {"budget": {"limit": 5, "window": 3600}}, "ci": {},'
            ' "*": {"budget": {"limit": 1, "window": 60}}}',
            "budget": '{"limit": 100, "window": 86400}',
        },
        "dev",
    )
    assert spend_limit_rules(settings, client_names(settings, secrets)) == {
        "laptop": Budget(1.0, 60),
        "alice": Budget(5.0, 3600),
        None: Budget(100.0, 86400),
    }


def test_rate_limit_bindings_one_per_distinct_limit() -> None:
    """Clients sharing a {limit, period} share a binding (keyed by client); "*" has one too."""
    settings, _ = load(BASE | {"providerKeys": TWO_PROVIDERS, "clients": POLICIES}, "dev")
    assert rate_limit_bindings(settings) == {
        "RATE_LIMIT_5_PER_10S": ClientRateLimit(5, 10),
        "RATE_LIMIT_100_PER_60S": ClientRateLimit(100, 60),
    }
    assert rate_limit_binding(ClientRateLimit(1000, 10)) == "RATE_LIMIT_1000_PER_10S"
    settings, _ = load(BASE, "dev")
    assert rate_limit_bindings(settings) == {}


def clients_with_budgets(count: int) -> str:
    """A `clients` value giving `count` clients a budget each."""
    entries = ", ".join(
        f'"c{number}": {{"budget": {{"limit": 1, "window": 3600}}}}' for number in range(count)
    )
    return "{" + entries + "}"


def test_twenty_spend_limit_rules_are_allowed() -> None:
    """Twenty rules, AI Gateway's limit, pass."""
    settings, secrets = load(
        BASE | {"clients": clients_with_budgets(19), "budget": '{"limit": 9, "window": 60}'}, "dev"
    )
    assert len(spend_limit_rules(settings, client_names(settings, secrets))) == 20


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            BASE | {"clients": clients_with_budgets(20), "budget": '{"limit": 9, "window": 60}'},
            r"^aigw:clients: got 21 spend-limit rules \(20 client budgets and the gateway budget\);"
            r" AI Gateway allows at most 20 per gateway",
        ),
        (
            BASE
            | {
                "clientTokens": "{"
                + ", ".join(f'"t{n}": "token-{n:02d}-0123456789abc"' for n in range(21))
                + "}",
                "clients": '{"*": {"budget": {"limit": 1, "window": 60}}}',
            },
            r"^aigw:clients: got 21 spend-limit rules \(21 client budgets\); .* a '\*' budget "
            r"counts once for every client without an entry of its own",
        ),
    ],
)
def test_more_than_twenty_spend_limit_rules_are_refused(
    raw: dict[str, object], message: str
) -> None:
    """More rules than AI Gateway allows stop the program with one message."""
    assert MAX_SPEND_LIMIT_RULES == 20
    with pytest.raises(SettingsError, match=message):
        load(raw, "dev")
