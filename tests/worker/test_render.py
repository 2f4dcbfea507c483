"""Rendering the Worker: valid JavaScript for any value, values round-trip, no secret inside."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jinja2
import pytest

from infra.client_policies import ClientPolicy
from infra.providers import PROVIDERS
from infra.settings import Settings, load
from infra.worker import render
from infra.worker.config import WorkerConfig
from infra.worker.policy import budget_exceeded_message, policy_of_client
from infra.worker.render import render_worker

ACCOUNT = "0123456789abcdef0123456789abcdef"
NODE = shutil.which("node") or "node"
HOSTILE = [
    "</script><script>alert(1)</script>",
    '"; globalThis.pwned = 1; "',
    "'; globalThis.pwned = 1; '",
    "`${globalThis.pwned = 1}`",
    "back\\slash\\",
    "new\nline\r\n",
    "line\u2028separator\u2029paragraph",
    "*/ globalThis.pwned = 1; /*",
    "// comment",
    "{{ config }} {% raw %}",
    "\x00nul\x1b",
    "caf\u00e9 \U0001f600",
]


def _settings(**raw: object) -> Settings:
    settings, _ = load(
        {"accountId": ACCOUNT, "providerKeys": {"openai": ["sk-test-a"]}, **raw}, "t"
    )
    return settings


def _import_in_node(tmp_path: Path, source: str, exports: str, expression: str) -> Any:
    """Import `source` as an ES module in node, exporting `exports`, and return `expression`
    (JavaScript over the module `m`) as JSON."""
    module = tmp_path / "worker.mjs"
    module.write_text(f"{source}\nexport {{ {exports} }};\n", encoding="utf-8")
    probe = tmp_path / "probe.mjs"
    probe.write_text(
        f"const m = await import('./worker.mjs');\nconsole.log(JSON.stringify({expression}));\n",
        encoding="utf-8",
    )
    ran = subprocess.run([NODE, str(probe)], capture_output=True, text=True, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def _evaluate(source: str, tmp_path: Path) -> dict[str, object]:
    """Check `source` with `node --check`, then import it and return its rendered constants."""
    module = tmp_path / "checked.mjs"
    module.write_text(source, encoding="utf-8")
    checked = subprocess.run([NODE, "--check", str(module)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    result: dict[str, object] = _import_in_node(
        tmp_path,
        source,
        "GATEWAY_URL, CORS_ORIGINS, PROVIDERS, ROTATION_OFFSET",
        "{gateway: m.GATEWAY_URL, origins: m.CORS_ORIGINS, providers: [...m.PROVIDERS.keys()],"
        " offset: m.ROTATION_OFFSET, pwned: globalThis.pwned ?? null,"
        " fetch: typeof m.default.fetch}",
    )
    return result


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_literals(value: str, tmp_path: Path) -> None:
    """A hostile CORS origin or gateway id (validation bypassed) is a JS string, byte for byte."""
    settings = dataclasses.replace(
        _settings(), cors_origins=(value, "*"), gateway_id=value, account_id=value
    )
    constants = _evaluate(render_worker(settings), tmp_path)
    assert constants["origins"] == [value, "*"]
    assert constants["gateway"] == f"https://gateway.ai.cloudflare.com/v1/{value}/{value}"
    assert constants["pwned"] is None
    assert constants["fetch"] == "function"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_gateway_url_stays_literal(value: str, tmp_path: Path) -> None:
    """Whatever `aigw dev --upstream` passes as the gateway URL is one string literal."""
    constants = _evaluate(render_worker(_settings(), gateway_url=value), tmp_path)
    assert constants["gateway"] == value.rstrip("/")
    assert constants["pwned"] is None


def test_rendered_source_is_ascii_and_has_no_raw_separators() -> None:
    """Non-ASCII values (U+2028 included) are escaped, so the source is plain ASCII."""
    settings = dataclasses.replace(_settings(), cors_origins=("a\u2028b", "caf\u00e9"))
    source = render_worker(settings)
    assert source.isascii()
    assert "a\\u2028b" in source and "caf\\u00e9" in source


def test_every_provider_renders_and_routes(tmp_path: Path) -> None:
    """With every known provider configured, the source is valid and routes each slug."""
    settings = _settings(providerKeys={slug: [f"k-{slug}"] for slug in PROVIDERS})
    constants = _evaluate(render_worker(settings, rotation_offset=5), tmp_path)
    assert constants["providers"] == sorted(PROVIDERS)
    assert constants["offset"] == 5


def test_deployed_offset_is_random() -> None:
    """Without a test offset, the rendered rotation offset is null (random per isolate)."""
    assert "const ROTATION_OFFSET = null;" in render_worker(_settings())


def test_no_secret_in_rendered_source() -> None:
    """Provider keys, client tokens and the gateway token never reach the source."""
    settings, secrets = load(
        {
            "accountId": ACCOUNT,
            "providerKeys": {"openai": ["sk-test-render-a"], "anthropic": ["sk-ant-test-render"]},
            "clientTokens": {"laptop": "tok-test-render-0001"},
            "gatewayToken": "gw-test-render-token",
        },
        "t",
    )
    source = render_worker(settings)
    values = [
        *(key for keys in secrets.provider_keys.values() for key in keys),
        *(token for tokens in secrets.client_tokens.values() for token in tokens),
        secrets.gateway_token or "",
    ]
    assert values and not [value for value in values if value in source]
    assert "OPENAI_API_KEYS" in source and "ANTHROPIC_API_KEYS" in source


def test_template_only_interpolates_through_tojson() -> None:
    """Every `{{ … }}` in the templates ends in `|tojson`, the filter that makes a JS literal; the
    only statements are the entry template's `{% include %}`s of the concerns' files."""
    expressions = []
    for path in sorted(render.TEMPLATE_DIR.glob("*.j2")):
        template = path.read_text(encoding="utf-8")
        if path.name == render.TEMPLATE:
            template = re.sub(r'^\{% include "\w+\.js\.j2" %\}$', "", template, flags=re.M)
        expressions += re.findall(r"\{\{(.*?)\}\}", template, flags=re.DOTALL)
        assert "{%" not in template, path.name
    assert expressions
    assert [e for e in expressions if not re.search(r"\|\s*tojson\s*$", e.strip())] == []


def test_renders_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template is found relative to the package, not the current directory."""
    monkeypatch.chdir(tmp_path)
    assert "export default" in render_worker(_settings())


def test_undefined_template_names_fail() -> None:
    """The Jinja environment is strict: a missing value is an error, never an empty string."""
    environment = render._environment()
    with pytest.raises(jinja2.UndefinedError, match="'missing' is undefined"):
        environment.from_string("{{ missing }}").render()


def test_policies_render_as_data_never_tokens(tmp_path: Path) -> None:
    """Client policies are one data literal, whatever their names and patterns hold (validation
    bypassed), a client called `__proto__` included; the clients' tokens are not in the source."""
    settings, secrets = load(
        {
            "accountId": ACCOUNT,
            "providerKeys": {"openai": ["sk-test-a"]},
            "clientTokens": {
                "__proto__": "tok-test-render-proto",
                "alice": "tok-test-render-alice",
            },
            "clients": {
                "__proto__": {"models": ["gpt-*"], "expires": "2030-01-02T03:04:05+01:00"},
                "alice": {"rateLimit": {"limit": 5, "period": 60}},
            },
        },
        "t",
    )
    hostile = {
        value: ClientPolicy(models=(value,), providers=(value,), endpoints=(("GET", value),))
        for value in HOSTILE
    }
    clients = {**settings.clients, **hostile}
    source = render_worker(dataclasses.replace(settings, clients=MappingProxyType(clients)))
    assert not [t for tokens in secrets.client_tokens.values() for t in tokens if t in source]
    rendered = _import_in_node(
        tmp_path,
        source,
        "CLIENT_POLICIES",
        "{policies: [...m.CLIENT_POLICIES], pwned: globalThis.pwned ?? null}",
    )
    assert rendered["pwned"] is None
    policies = dict(rendered["policies"])
    assert list(policies) == ["__proto__", "alice", *HOSTILE]
    assert policies["__proto__"] == {
        "budget": None,
        "endpoints": None,
        "expires": "2030-01-02T02:04:05Z",
        "expiresMs": 1893549845000,
        "limited": True,
        "models": ["gpt-*"],
        "providers": None,
        "rateLimit": None,
    }
    assert policies["alice"]["rateLimit"] == {
        "binding": "RATE_LIMIT_5_PER_60S",
        "limit": 5,
        "period": 60,
    }
    assert [
        (policies[v]["models"], policies[v]["providers"], policies[v]["endpoints"]) for v in HOSTILE
    ] == [([v], [v], [["GET", v]]) for v in HOSTILE]


def test_budget_message_agrees_with_the_model(tmp_path: Path) -> None:
    """The Worker's message for the gateway's spend-limit refusal is the model's, for a client
    with its own budget, one with the "*" budget, and one the policies do not name."""
    settings = _settings(
        clients={
            "alice": {"budget": {"limit": 2.5, "window": 3600}},
            "*": {"budget": {"limit": 10, "window": 86400}},
        }
    )
    without = _settings(clients={"alice": {"budget": {"limit": 1, "window": 60}}})
    cases = [(settings, "alice"), (settings, "bob"), (without, "bob")]
    for case, client in cases:
        rendered = _import_in_node(
            tmp_path,
            render_worker(case),
            "budgetExceededMessage",
            f"m.budgetExceededMessage({json.dumps(client)})",
        )
        config = WorkerConfig.from_settings(case)
        assert rendered == budget_exceeded_message(client, policy_of_client(config, client))
    assert "$2.50 per 3600 s" in budget_exceeded_message("alice", settings.clients["alice"])
