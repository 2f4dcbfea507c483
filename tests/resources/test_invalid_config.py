"""Every invalid stack configuration stops the program with one message and registers nothing."""

from __future__ import annotations

import json

import pulumi
import pytest
from pulumi_harness import ACCOUNT, ZONE, run_program

import infra.resources.component
from tests.cloudflare_fake import FakeCloudflare

KEYS = {"openai": ["sk-test-a"]}
BASE: dict[str, object] = {"accountId": ACCOUNT, "providerKeys": KEYS}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"providerKeys": KEYS}, r"^aigw:accountId: got nothing; it is required"),
        ({"accountId": "", "providerKeys": KEYS}, r"^aigw:accountId: got nothing"),
        (BASE | {"accountId": "ACCOUNT"}, r"^aigw:accountId: got 'ACCOUNT'; expected 32"),
        ({"accountId": ACCOUNT}, r"^aigw:providerKeys: got nothing; it is required"),
        (BASE | {"providerKeys": {}}, r"^aigw:providerKeys: got an empty object"),
        (BASE | {"providerKeys": {"openai": []}}, r"^aigw:providerKeys\.openai: got an empty"),
        (
            BASE | {"providerKeys": {"openai": ["sk-test-a", "sk-test-a"]}},
            r"^aigw:providerKeys\.openai\[1\]: got the same key as providerKeys\.openai\[0\]",
        ),
        (
            BASE | {"providerKeys": {"openia": ["sk-test-a"]}},
            r"^aigw:providerKeys: got provider 'openia'; known providers are openai, anthropic",
        ),
        (BASE | {"gatewayId": "My_Gateway"}, r"^aigw:gatewayId: got 'My_Gateway'; expected lower"),
        (BASE | {"gatewayId": "g" * 65}, r"^aigw:gatewayId: got 'g{65}'; .*at most 64"),
        (BASE | {"workerName": "-worker"}, r"^aigw:workerName: got '-worker'"),
        (BASE | {"cacheTtl": "-1"}, r"^aigw:cacheTtl: got '-1'; expected a whole number from 0"),
        (
            BASE | {"maxAttempts": "0"},
            r"^aigw:maxAttempts: got '0'; expected a whole number from 1",
        ),
        (BASE | {"maxBodyBytes": "0"}, r"^aigw:maxBodyBytes: got '0'; expected a whole number"),
        (
            BASE | {"rateLimit": {"limit": 0, "interval": 60}},
            r"^aigw:rateLimit\.limit: got 0; expected a whole number from 1",
        ),
        (
            BASE | {"rateLimit": {"limit": 10, "interval": -5}},
            r"^aigw:rateLimit\.interval: got -5; expected a whole number from 1",
        ),
        (
            BASE | {"rateLimit": {"limit": 10, "interval": 60, "technique": "leaky"}},
            r"^aigw:rateLimit\.technique: got 'leaky'; expected 'fixed' or 'sliding'",
        ),
        (
            BASE | {"logRetention": {"maxLogs": 20000, "strategy": "DROP"}},
            r"^aigw:logRetention\.strategy: got 'DROP'; expected 'STOP_INSERTING' or 'DELETE_",
        ),
        (
            BASE | {"logRetention": {"maxLogs": 0}},
            r"^aigw:logRetention\.maxLogs: got 0; expected a whole number from 10000",
        ),
        (
            BASE | {"customDomain": "ai.example.com"},
            r"^aigw:customDomain: got 'ai.example.com'; expected \{\"zoneId\", \"hostname\"\}",
        ),
        (
            BASE | {"customDomain": {"zoneId": ZONE, "hostname": "https://ai.example.com"}},
            r"^aigw:customDomain\.hostname: got 'https://ai.example.com'; expected a DNS hostname",
        ),
        (
            BASE | {"customDomain": {"hostname": "ai.example.com"}},
            r"^aigw:customDomain: got .*\(missing 'zoneId'\)",
        ),
        (BASE | {"corsOrigins": '"*"'}, r"^aigw:corsOrigins: got '\*'; expected a non-empty list"),
        (
            BASE | {"corsOrigins": ["https://chat.example.com/"]},
            r"^aigw:corsOrigins: got 'https://chat.example.com/'; expected \"\*\" or an origin",
        ),
        (
            BASE | {"clientTokens": {"laptop": "short"}},
            r"^aigw:clientTokens\.laptop: got a token shorter than 16 characters",
        ),
        (
            BASE | {"clientTokens": {"a": "same-token-0123456789", "b": "same-token-0123456789"}},
            r"^aigw:clientTokens\.b: got the same token as clientTokens\.a",
        ),
        (BASE | {"workersDev": "false"}, r"^aigw:workersDev: got false with no customDomain"),
        (BASE | {"workersDev": "yes"}, r"^aigw:workersDev: got 'yes'; expected true or false"),
        (BASE | {"rateLimits": {"limit": 1}}, r"^aigw:rateLimits: got a key aigw does not know"),
        # client policies
        (BASE | {"clients": ["alice"]}, r"^aigw:clients: got \[\"alice\"\]; expected an object"),
        (BASE | {"clients": {"bob smith": {}}}, r"^aigw:clients: got client name 'bob smith'"),
        (
            BASE | {"clients": {"alice": {"rateLimit": {"limit": 10, "period": 30}}}},
            r"^aigw:clients\.alice\.rateLimit\.period: got 30; expected 10 or 60",
        ),
        (
            BASE | {"clients": {"alice": {"rateLimit": {"limit": -1, "period": 60}}}},
            r"^aigw:clients\.alice\.rateLimit\.limit: got -1; expected a whole number from 1",
        ),
        (
            BASE | {"clients": {"alice": {"models": []}}},
            r"^aigw:clients\.alice\.models: got \[\]; expected a non-empty list",
        ),
        (
            BASE | {"clients": {"*": {"providers": ["anthropic"]}}},
            r"^aigw:clients\.\*\.providers\[0\]: got 'anthropic', which has no keys",
        ),
        (
            BASE | {"clients": {"alice": {"providers": ["azure"]}}},
            r"^aigw:clients\.alice\.providers\[0\]: got 'azure'; known providers are",
        ),
        (
            BASE | {"clients": {"alice": {"budget": {"limit": 0, "window": 3600}}}},
            r"^aigw:clients\.alice\.budget\.limit: got 0; expected an amount of US dollars",
        ),
        (
            BASE | {"clients": {"alice": {"budget": {"limit": 5, "window": 30}}}},
            r"^aigw:clients\.alice\.budget\.window: got 30; expected a whole number from 60",
        ),
        (
            BASE | {"clients": {"alice": {"expires": "next friday"}}},
            r"^aigw:clients\.alice\.expires: got 'next friday'; expected an ISO 8601 date",
        ),
        (
            BASE | {"clients": {"alice": {"rate_limit": {"limit": 1, "period": 10}}}},
            r"^aigw:clients\.alice: got .*\(unknown field 'rate_limit'\)",
        ),
        (
            BASE | {"budget": {"limit": 10}},
            r"^aigw:budget: got .*\(missing 'window'\); fields are limit, technique, window",
        ),
        (
            BASE
            | {
                "clients": {f"c{n}": {"budget": {"limit": 1, "window": 60}} for n in range(20)},
                "budget": {"limit": 10, "window": 60},
            },
            r"^aigw:clients: got 21 spend-limit rules \(20 client budgets and the gateway budget\)",
        ),
        (
            BASE | {"clientTokens": {"laptop": []}},
            r"^aigw:clientTokens\.laptop: got an empty list",
        ),
        (BASE | {"analytics": "maybe"}, r"^aigw:analytics: got 'maybe'"),
        (BASE | {"otels": []}, r"^aigw:otels: got a list; expected a list of 1 to 10 exporters"),
        (
            BASE | {"otels": [{"url": "http://otel.example.com/v1/traces"}]},
            r"^aigw:otels\[0\]\.url: got a value that is not an https:// URL",
        ),
        (
            BASE | {"otels": [{"url": "https://otel.example.com", "contentType": "xml"}]},
            r"^aigw:otels\[0\]\.contentType: got 'xml'; expected `json` or `protobuf`",
        ),
        (
            BASE | {"otels": [{"url": "https://otel.example.com", "headers": {"bad name": "x"}}]},
            r"^aigw:otels\[0\]\.headers: got an object with a bad entry",
        ),
        (
            BASE | {"otels": [{"url": "https://otel.example.com", "auth": "x"}]},
            r"^aigw:otels\[0\]: got an object with unknown field 'auth'",
        ),
        (BASE | {"logpush": {}}, r"^aigw:logpush: got \{\} \(missing 'publicKey'\)"),
        (
            BASE | {"logpush": {"publicKey": "not a key"}},
            r"^aigw:logpush\.publicKey: got 'not a key'; expected a PEM public key",
        ),
    ],
)
def test_invalid_config_registers_nothing(config: dict[str, object], message: str) -> None:
    """The program stops with one message naming the key, before any resource is registered."""
    run = run_program(config, expect_error=True)
    assert isinstance(run.error, pulumi.RunError)
    assert len(str(run.error).splitlines()) == 1
    with pytest.raises(pulumi.RunError, match=message):
        raise run.error
    assert run.registrations == []
    assert run.outputs == {}


@pytest.mark.parametrize(
    "config",
    [
        BASE | {"providerKeys": {"openai": ["sk-test-secret key"]}},
        BASE | {"providerKeys": '{"openai": ["sk-test-secret-unclosed"'},
        BASE | {"clientTokens": {"laptop": "sk-test-secret"}},
        BASE | {"clientTokens": {"laptop": "sk-test-secret,0123456789"}},
        BASE | {"gatewayToken": "sk-test secret"},
        BASE | {"clientTokens": {"laptop": ["sk-test-secret-0123", "sk-test-secret-0123"]}},
        BASE | {"otels": [{"url": "https://o.example.com", "authorization": ["sk-test-secret"]}]},
        BASE | {"otels": [{"url": "https://o.example.com", "headers": {"x": "sk-test-secret\n"}}]},
        BASE | {"otels": [{"url": "https://sk-test-secret x"}]},
    ],
)
def test_errors_about_secrets_never_show_them(config: dict[str, object]) -> None:
    """A refused secret value is described, never echoed."""
    run = run_program(config, expect_error=True)
    assert isinstance(run.error, pulumi.RunError)
    assert "secret" not in str(run.error)
    assert run.registrations == []


@pytest.mark.parametrize("status", [403, 404])
def test_missing_workers_subdomain_stops_before_any_resource(
    status: int, cloudflare_api: FakeCloudflare
) -> None:
    """Without a readable workers.dev subdomain the program says what to do and creates nothing."""
    cloudflare_api.subdomain_status = status
    run = run_program(BASE, expect_error=True)
    with pytest.raises(pulumi.RunError, match=rf"workers.dev subdomain .*answered {status}"):
        assert run.error is not None
        raise run.error
    assert run.registrations == []


def test_no_cloudflare_credentials_stops_before_any_resource(
    monkeypatch: pytest.MonkeyPatch, cloudflare_api: FakeCloudflare
) -> None:
    """Without any Cloudflare credentials the program names the two ways to give one."""
    for name in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY", "CLOUDFLARE_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    run = run_program(BASE, expect_error=True)
    with pytest.raises(pulumi.RunError, match="CLOUDFLARE_API_TOKEN or pulumi config set"):
        assert run.error is not None
        raise run.error
    assert run.registrations == []
    assert cloudflare_api.requests == []


def test_unknown_key_from_the_cli_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo'd key that reaches the program the way the Pulumi CLI passes config is refused."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"aigw:cachettl": "300"}))
    run = run_program(BASE, expect_error=True)
    with pytest.raises(pulumi.RunError, match=r"^aigw:cachettl: got a key aigw does not know"):
        assert run.error is not None
        raise run.error
    assert run.registrations == []


def test_a_render_failure_registers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Worker is rendered before the first resource, so a template error leaves nothing."""

    def broken(settings: object) -> str:
        raise RuntimeError("template error for tests")

    monkeypatch.setattr(infra.resources.component, "render_worker", broken)
    run = run_program(BASE, expect_error=True)
    assert "template error for tests" in str(run.error)
    assert run.registrations == []
