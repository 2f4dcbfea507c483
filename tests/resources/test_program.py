"""The whole Pulumi program under mocks: resources, inputs, dependencies, secrets and outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pulumi_harness import (
    ACCOUNT,
    CREATED_GATEWAY_TOKEN,
    GENERATED_CLIENT_TOKEN,
    PERMISSION_GROUPS_TOKEN,
    RUN_GROUP_ID,
    ZONE,
    ProgramRun,
    is_secret_input,
    reveal,
    run_program,
)

import infra.resources.component
import infra.worker
import infra.worker.render
from infra.settings import load
from infra.worker.pool import key_id
from tests.cloudflare_fake import WORKERS_SUBDOMAIN, FakeCloudflare

GATEWAY = "cloudflare:index/aiGateway:AiGateway"
TOKEN = "cloudflare:index/accountToken:AccountToken"
PASSWORD = "random:index/randomPassword:RandomPassword"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"
SUBDOMAIN = "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain"
CUSTOM_DOMAIN = "cloudflare:index/workersCustomDomain:WorkersCustomDomain"
COMPONENT = "aigw:index:Gateway"

OPENAI_KEYS = ["sk-test-a", "sk-test-b"]
ANTHROPIC_KEYS = ["sk-ant-test-c"]
CLIENT_TOKENS = {"laptop": "laptop-token-0123456789", "ci": "ci-token-0123456789abc"}
GATEWAY_TOKEN = "gateway-token-for-tests"

MINIMAL: dict[str, object] = {"accountId": ACCOUNT, "providerKeys": {"openai": OPENAI_KEYS}}
FULL: dict[str, object] = {
    "accountId": ACCOUNT,
    "providerKeys": {"openai": OPENAI_KEYS, "anthropic": ANTHROPIC_KEYS},
    "clientTokens": CLIENT_TOKENS,
    "gatewayToken": GATEWAY_TOKEN,
    "gatewayId": "team-gateway",
    "workerName": "team-worker",
    "cacheTtl": "300",
    "cacheInvalidateOnUpdate": "false",
    "collectLogs": "false",
    "rateLimit": {"limit": 600, "interval": 60, "technique": "sliding"},
    "logRetention": {"maxLogs": 100000, "strategy": "DELETE_OLDEST"},
    "corsOrigins": ["https://chat.example.com"],
    "maxAttempts": "4",
    "maxBodyBytes": "1048576",
}
CUSTOM = {"zoneId": ZONE, "hostname": "AI.Example.com"}


def types_of(run: ProgramRun) -> list[str]:
    """Resource types in registration order."""
    return [registration.type for registration in run.registrations]


def test_default_stack_creates_gateway_token_worker_and_route() -> None:
    """With only the required keys, the program creates the six resources of a default stack."""
    run = run_program(MINIMAL)
    assert sorted(types_of(run)) == sorted([COMPONENT, GATEWAY, TOKEN, PASSWORD, SCRIPT, SUBDOMAIN])
    names = {registration.name for registration in run.registrations}
    assert names == {
        "aigw",
        "aigw-gateway",
        "aigw-gateway-token",
        "aigw-client-token",
        "aigw-worker",
        "aigw-workers-dev",
    }


def test_every_resource_is_a_child_of_the_component() -> None:
    """All resources hang below one `aigw:index:Gateway` component."""
    run = run_program(FULL | {"customDomain": CUSTOM})
    component = run.one(COMPONENT)
    children = [r for r in run.registrations if r.type != COMPONENT]
    assert len(children) == 4
    assert {child.parent for child in children} == {component.urn}


def test_gateway_inputs_follow_settings() -> None:
    """Cache, logs, rate limit and log retention reach the AI Gateway; authentication is on."""
    gateway = run_program(FULL).one(GATEWAY)
    assert gateway.inputs == {
        "accountId": ACCOUNT,
        "aiGatewayId": "team-gateway",
        "authentication": True,
        "cacheTtl": 300,
        "cacheInvalidateOnUpdate": False,
        "collectLogs": False,
        "rateLimitingLimit": 600,
        "rateLimitingInterval": 60,
        "rateLimitingTechnique": "sliding",
        "logManagement": 100000,
        "logManagementStrategy": "DELETE_OLDEST",
        "spendLimits": {"enabled": False, "rules": []},
        "logpush": False,
        "otels": gateway.inputs["otels"],
        # Set explicitly even at their defaults: the gateway's own retries off, and the rest.
        "retryMaxAttempts": 1,
        "retryDelay": 0,
        "retryBackoff": "constant",
        "logClassification": False,
        "workersAiBillingMode": "postpaid",
        "byokOnly": False,
    }
    # No exporter: an empty list, still a secret, so that removing the setting removes it.
    assert is_secret_input(gateway.inputs["otels"]) and reveal(gateway.inputs["otels"]) == []
    assert not gateway.protect


def test_gateway_defaults_leave_rate_limit_and_retention_off() -> None:
    """Without rateLimit the gateway gets limit 0 / interval 0 (off) and no log-retention fields."""
    gateway = run_program(MINIMAL).one(GATEWAY)
    assert gateway.inputs["aiGatewayId"] == "aigw-dev"
    assert (gateway.inputs["rateLimitingLimit"], gateway.inputs["rateLimitingInterval"]) == (0, 0)
    assert (gateway.inputs["cacheTtl"], gateway.inputs["collectLogs"]) == (0, True)
    assert "logManagement" not in gateway.inputs
    assert "logManagementStrategy" not in gateway.inputs
    assert gateway.inputs["authentication"] is True


def test_protect_guards_the_gateway_only() -> None:
    """`protect` marks the gateway (and with it its logs) as protected, nothing else."""
    run = run_program(MINIMAL | {"protect": "true"})
    assert run.one(GATEWAY).protect
    assert [r.type for r in run.registrations if r.protect] == [GATEWAY]


def test_worker_is_an_es_module_with_observability() -> None:
    """The script is the rendered module, at the pinned compatibility date, observability on."""
    run = run_program(FULL)
    script = run.one(SCRIPT).inputs
    settings, _ = load(FULL, "dev")
    assert script["accountId"] == ACCOUNT
    assert script["scriptName"] == "team-worker"
    assert script["mainModule"] == "worker.js"
    assert script["compatibilityDate"] == infra.worker.render.COMPATIBILITY_DATE
    assert script["observability"] == {
        "enabled": True,
        "headSamplingRate": 1.0,
        "logs": {"enabled": True, "invocationLogs": True, "headSamplingRate": 1.0, "persist": True},
    }
    # The real Worker, rendered from the settings: the gateway it calls is fixed in its source.
    assert script["content"] == infra.worker.render.render_worker(settings)
    assert json.dumps(settings.gateway_url) in script["content"]
    assert "export default" in script["content"]
    assert "bodyPart" not in script


def test_bindings_are_secret_and_hold_every_secret() -> None:
    """Bindings reach the engine as one secret: keys per provider, client tokens, gateway token."""
    bindings = run_program(FULL).one(SCRIPT).inputs["bindings"]
    assert is_secret_input(bindings)
    assert reveal(bindings) == [
        {"name": "OPENAI_API_KEYS", "type": "secret_text", "text": "sk-test-a\nsk-test-b"},
        {"name": "ANTHROPIC_API_KEYS", "type": "secret_text", "text": "sk-ant-test-c"},
        {
            "name": "CLIENT_TOKENS",
            "type": "secret_text",
            "text": "laptop:laptop-token-0123456789\nci:ci-token-0123456789abc",
        },
        {"name": "GATEWAY_TOKEN", "type": "secret_text", "text": GATEWAY_TOKEN},
        {"name": "ANALYTICS", "type": "analytics_engine", "dataset": "team_worker"},
    ]


@pytest.mark.parametrize("config", [MINIMAL, FULL], ids=["generated", "configured"])
def test_no_secret_in_the_rendered_script(config: dict[str, object]) -> None:
    """No provider key, client token or gateway token appears in the uploaded source."""
    run = run_program(config)
    script = run.one(SCRIPT).inputs
    assert not is_secret_input(script["content"])
    content = script["content"]
    for binding in [b for b in reveal(script["bindings"]) if "text" in b]:
        for line in binding["text"].split("\n"):
            secret = line.split(":", 1)[-1]
            assert secret and secret not in content, binding["name"]
    secrets = [*OPENAI_KEYS, *CLIENT_TOKENS.values(), GATEWAY_TOKEN, GENERATED_CLIENT_TOKEN]
    assert not [secret for secret in secrets if secret in content]


def test_generated_client_token_is_long_and_binding_safe() -> None:
    """Without clientTokens one 48-character token without special characters is generated."""
    run = run_program(MINIMAL)
    password = run.one(PASSWORD).inputs
    assert password == {"length": 48, "special": False}
    text = {b["name"]: b["text"] for b in reveal(run.one(SCRIPT).inputs["bindings"]) if "text" in b}
    assert text["CLIENT_TOKENS"] == f"default:{GENERATED_CLIENT_TOKEN}"


def test_created_gateway_token_is_scoped_to_ai_gateway_run_on_this_account() -> None:
    """Without gatewayToken an account token with only AI Gateway Run on this account is made."""
    run = run_program(MINIMAL)
    assert run.invokes == [PERMISSION_GROUPS_TOKEN]
    token = run.one(TOKEN).inputs
    assert token["accountId"] == ACCOUNT
    assert token["name"] == "aigw aigw-dev gateway run"
    [policy] = token["policies"]
    assert policy["effect"] == "allow"
    assert policy["permissionGroups"] == [{"id": RUN_GROUP_ID}]
    assert json.loads(policy["resources"]) == {f"com.cloudflare.api.account.{ACCOUNT}": "*"}
    text = {b["name"]: b["text"] for b in reveal(run.one(SCRIPT).inputs["bindings"]) if "text" in b}
    assert text["GATEWAY_TOKEN"] == CREATED_GATEWAY_TOKEN


def test_configured_tokens_create_nothing_extra() -> None:
    """With clientTokens and gatewayToken set, no token resource and no lookup are made."""
    run = run_program(FULL)
    assert not run.of_type(TOKEN)
    assert not run.of_type(PASSWORD)
    assert run.invokes == []


def test_script_waits_for_gateway_and_tokens() -> None:
    """The Worker is uploaded after the gateway and the tokens it is bound to exist."""
    run = run_program(MINIMAL)
    script = run.one(SCRIPT)
    for type_ in (GATEWAY, TOKEN, PASSWORD):
        assert run.one(type_).urn in script.dependencies, type_


def test_workers_dev_route_depends_on_the_script() -> None:
    """The workers.dev route names the script and is created after it."""
    run = run_program(MINIMAL)
    route = run.one(SUBDOMAIN)
    assert run.one(SCRIPT).urn in route.dependencies
    assert route.inputs == {
        "accountId": ACCOUNT,
        "scriptName": "aigw-dev",
        "enabled": True,
        "previewsEnabled": False,
    }


def test_custom_domain_replaces_workers_dev(cloudflare_api: FakeCloudflare) -> None:
    """With customDomain and workersDev false, the Worker is served on the hostname only."""
    run = run_program(MINIMAL | {"customDomain": CUSTOM, "workersDev": "false"})
    assert not run.of_type(SUBDOMAIN)
    domain = run.one(CUSTOM_DOMAIN)
    assert run.one(SCRIPT).urn in domain.dependencies
    assert domain.inputs == {
        "accountId": ACCOUNT,
        "hostname": "ai.example.com",
        "zoneId": ZONE,
        "service": "aigw-dev",
    }
    assert run.outputs["url"] == "https://ai.example.com"
    # The workers.dev subdomain is not needed, so the API is not asked for it.
    assert cloudflare_api.requests == []


def test_custom_domain_beside_workers_dev_is_the_url() -> None:
    """With both addresses the custom domain is the one exported."""
    run = run_program(MINIMAL | {"customDomain": CUSTOM})
    assert run.one(SUBDOMAIN) and run.one(CUSTOM_DOMAIN)
    assert run.outputs["openaiBaseUrl"] == "https://ai.example.com/v1"


def test_outputs_of_a_default_stack() -> None:
    """The stack exports DESIGN §2's outputs; only clientTokens is secret."""
    run = run_program(MINIMAL, stack="dev")
    url = f"https://aigw-dev.{WORKERS_SUBDOMAIN}.workers.dev"
    assert run.outputs == {
        "gatewayId": "aigw-dev",
        "gatewayUrl": f"https://gateway.ai.cloudflare.com/v1/{ACCOUNT}/aigw-dev",
        "workerName": "aigw-dev",
        "url": url,
        "openaiBaseUrl": f"{url}/v1",
        "clientTokens": {"default": GENERATED_CLIENT_TOKEN},
        "keyPlaces": {
            "openai": {
                key_id(OPENAI_KEYS[0]): "providerKeys.openai[0]",
                key_id(OPENAI_KEYS[1]): "providerKeys.openai[1]",
            }
        },
    }
    assert run.secret_outputs == {"clientTokens"}


def test_key_places_name_each_keys_config_entry_and_never_a_key() -> None:
    """keyPlaces maps the id `aigw keys` shows to `providerKeys.<provider>[<index>]`, in clear,
    and holds no key: the ids are what the gateway's logs already carry."""
    run = run_program(FULL)
    assert run.outputs["keyPlaces"] == {
        "openai": {
            key_id("sk-test-a"): "providerKeys.openai[0]",
            key_id("sk-test-b"): "providerKeys.openai[1]",
        },
        "anthropic": {key_id("sk-ant-test-c"): "providerKeys.anthropic[0]"},
    }
    assert "keyPlaces" not in run.secret_outputs
    exported = json.dumps(run.outputs["keyPlaces"])
    assert not any(key in exported for key in [*OPENAI_KEYS, *ANTHROPIC_KEYS])


def test_configured_client_tokens_are_exported_as_a_secret() -> None:
    """Configured client tokens come back out unchanged, as a secret."""
    run = run_program(FULL)
    assert run.outputs["clientTokens"] == CLIENT_TOKENS
    assert "clientTokens" in run.secret_outputs
    assert run.outputs["workerName"] == "team-worker"
    assert run.outputs["gatewayId"] == "team-gateway"


def test_stack_name_gives_default_names() -> None:
    """Gateway and Worker default to `aigw-<stack>`, folded to what Cloudflare allows."""
    run = run_program(MINIMAL, stack="Prod_EU")
    assert run.one(GATEWAY).inputs["aiGatewayId"] == "aigw-prod-eu"
    assert run.one(SCRIPT).inputs["scriptName"] == "aigw-prod-eu"


def test_account_subdomain_lookup_uses_the_stack_api_token(cloudflare_api: FakeCloudflare) -> None:
    """The workers.dev lookup asks this account with `cloudflare:apiToken` when it is set."""
    cloudflare_api.token = "stack-config-api-token"
    run_program(MINIMAL, other_config={"cloudflare:apiToken": "stack-config-api-token"})
    assert cloudflare_api.requests == [
        (f"/accounts/{ACCOUNT}/workers/subdomain", "Bearer stack-config-api-token")
    ]


def names_and_inputs(run: ProgramRun) -> dict[tuple[str, str], dict[str, Any]]:
    """Each resource's identity with its inputs."""
    return {(r.type, r.name): r.inputs for r in run.registrations}


def test_changing_keys_tokens_and_settings_keeps_every_resource() -> None:
    """New keys, tokens and gateway settings change inputs only: same resources, no replace."""
    before = run_program(FULL)
    after = run_program(
        FULL
        | {
            "providerKeys": {"openai": ["sk-test-new"]},
            "clientTokens": {"laptop": "another-token-0123456789"},
            "gatewayToken": "another-gateway-token",
            "cacheTtl": "60",
            "rateLimit": {"limit": 10, "interval": 1},
            "logRetention": {"maxLogs": 20000},
            "maxAttempts": "2",
        }
    )
    assert names_and_inputs(before).keys() == names_and_inputs(after).keys()
    for key, inputs in names_and_inputs(after).items():
        # Identity fields (what a provider replaces on) stay the same.
        for field_name in ("accountId", "aiGatewayId", "scriptName"):
            assert inputs.get(field_name) == names_and_inputs(before)[key].get(field_name)
    assert not [r.name for r in after.registrations if r.replace_on_changes]
    assert not [r.name for r in after.registrations if r.delete_before_replace]
    assert names_and_inputs(after)[(GATEWAY, "aigw-gateway")]["cacheTtl"] == 60


def test_config_from_the_cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values passed the way the Pulumi CLI does (PULUMI_CONFIG, objects as JSON text) work."""
    passed = {
        f"aigw:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in FULL.items()
    }
    # Pulumi.yaml's "" defaults for unset optional keys arrive too, and mean "unset".
    passed["aigw:customDomain"] = ""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(passed))
    run = run_program({})
    assert run.one(GATEWAY).inputs["aiGatewayId"] == "team-gateway"
    assert run.outputs["clientTokens"] == CLIENT_TOKENS
    assert not run.of_type(CUSTOM_DOMAIN)


POLICY_CONFIG: dict[str, object] = MINIMAL | {
    "providerKeys": {"openai": OPENAI_KEYS, "anthropic": ANTHROPIC_KEYS},
    "clientTokens": {"laptop": ["laptop-old-token-0123", "laptop-new-token-0123"]},
    "clients": {
        "alice": {
            "budget": {"limit": 25, "window": 86400},
            "rateLimit": {"limit": 10, "period": 10},
        },
        "ci": {"models": ["gpt-4o-mini"], "providers": ["openai"], "expires": "2026-12-31"},
        "*": {
            "budget": {"limit": 1.5, "window": 3600, "technique": "sliding"},
            "rateLimit": {"limit": 60, "period": 60},
        },
    },
    "budget": {"limit": 100, "window": 2592000},
}


def test_budgets_become_spend_limit_rules_on_the_gateway() -> None:
    """Each client budget (and "*" for each client without an entry) is a rule filtered on the
    client metadata with a stable id; the gateway budget is one more, unfiltered."""
    limits = run_program(POLICY_CONFIG).one(GATEWAY).inputs["spendLimits"]
    assert limits["enabled"] is True
    rules = {rule["id"]: rule for rule in limits["rules"]}
    assert list(rules) == ["aigw-client-laptop", "aigw-client-alice", "aigw-gateway"]
    assert rules["aigw-client-laptop"] == {
        "id": "aigw-client-laptop",
        "enabled": True,
        "limitType": "cost",
        "limit": 1.5,
        "window": 3600,
        "technique": "sliding",
        "metadata": {"client": {"mode": "filter", "values": ["laptop"]}},
    }
    assert (rules["aigw-client-alice"]["limit"], rules["aigw-client-alice"]["window"]) == (
        25,
        86400,
    )
    assert rules["aigw-client-alice"]["metadata"]["client"]["values"] == ["alice"]
    assert "metadata" not in rules["aigw-gateway"]
    assert (rules["aigw-gateway"]["limit"], rules["aigw-gateway"]["window"]) == (100, 2592000)


def test_changing_a_budget_updates_its_rule_in_place() -> None:
    """A new limit keeps every rule's id and the gateway resource: `pulumi up` updates in place."""
    before = run_program(POLICY_CONFIG).one(GATEWAY)
    changed = dict(POLICY_CONFIG) | {"budget": {"limit": 50, "window": 2592000}}
    after = run_program(changed).one(GATEWAY)
    assert (before.name, before.urn) == (after.name, after.urn)
    ids = [[rule["id"] for rule in run.inputs["spendLimits"]["rules"]] for run in (before, after)]
    assert ids[0] == ids[1]
    assert after.inputs["spendLimits"]["rules"][-1]["limit"] == 50
    assert not after.replace_on_changes


def test_rate_limits_become_ratelimit_bindings() -> None:
    """One `ratelimit` binding per distinct {limit, period}, beside the secret bindings."""
    bindings = reveal(run_program(POLICY_CONFIG).one(SCRIPT).inputs["bindings"])
    limits = [binding for binding in bindings if binding["type"] == "ratelimit"]
    assert [(b["name"], b["simple"]) for b in limits] == [
        ("RATE_LIMIT_10_PER_10S", {"limit": 10, "period": 10}),
        ("RATE_LIMIT_60_PER_60S", {"limit": 60, "period": 60}),
    ]
    assert all(b["namespaceId"].isdigit() for b in limits)
    assert len({b["namespaceId"] for b in limits}) == 2
    other_stack = reveal(run_program(POLICY_CONFIG, stack="prod").one(SCRIPT).inputs["bindings"])
    other_ids = {b["namespaceId"] for b in other_stack if b["type"] == "ratelimit"}
    assert not other_ids & {b["namespaceId"] for b in limits}


def test_clients_without_tokens_get_generated_ones() -> None:
    """Every client named in `clients` without a token gets its own generated token; a rotating
    client's tokens are each bound, and the output lists them, as a secret."""
    run = run_program(POLICY_CONFIG)
    passwords = sorted(password.name for password in run.of_type(PASSWORD))
    assert passwords == ["aigw-client-token-alice", "aigw-client-token-ci"]
    assert all(
        password.inputs == {"length": 48, "special": False} for password in run.of_type(PASSWORD)
    )
    text = {b["name"]: b["text"] for b in reveal(run.one(SCRIPT).inputs["bindings"]) if "text" in b}
    assert text["CLIENT_TOKENS"].split("\n") == [
        "laptop:laptop-old-token-0123",
        "laptop:laptop-new-token-0123",
        f"alice:{GENERATED_CLIENT_TOKEN}",
        f"ci:{GENERATED_CLIENT_TOKEN}",
    ]
    assert run.outputs["clientTokens"] == {
        "laptop": ["laptop-old-token-0123", "laptop-new-token-0123"],
        "alice": GENERATED_CLIENT_TOKEN,
        "ci": GENERATED_CLIENT_TOKEN,
    }
    assert "clientTokens" in run.secret_outputs
    script = run.one(SCRIPT)
    assert all(password.urn in script.dependencies for password in run.of_type(PASSWORD))


def test_the_default_client_keeps_its_token_resource() -> None:
    """A stack that had only the generated `default` token keeps that resource when it names
    clients, so adding a policy does not rotate the token already handed out."""
    run = run_program(MINIMAL | {"clients": {"default": {"models": ["gpt-4o-mini"]}}})
    assert [password.name for password in run.of_type(PASSWORD)] == ["aigw-client-token"]
    assert run.outputs["clientTokens"] == {"default": GENERATED_CLIENT_TOKEN}


def test_the_rotation_page_names_the_generated_tokens_urn() -> None:
    """`pulumi up --replace` on the docs' URN replaces alice's generated token on stack dev: the
    URN the page gives is the one the program registers."""
    page = Path(__file__).resolve().parents[2] / "docs" / "operate" / "replace-keys.md"
    [shown] = re.findall(r"--replace '([^']+)'", page.read_text(encoding="utf-8"))
    run = run_program(POLICY_CONFIG, stack="dev")
    [alice] = [p for p in run.of_type(PASSWORD) if p.name == "aigw-client-token-alice"]
    assert shown == alice.urn


def test_new_worker_code_is_an_update_of_the_scripts_content_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An aigw upgrade that changes the Worker's code changes one input of one resource, the
    script's content, and no identity: `pulumi preview` shows an update in place (docs/upgrade)."""
    before = names_and_inputs(run_program(FULL))
    rendered = infra.resources.component.render_worker
    monkeypatch.setattr(
        infra.resources.component,
        "render_worker",
        lambda settings: rendered(settings) + "\n// the next version\n",
    )
    after = names_and_inputs(run_program(FULL))
    assert before.keys() == after.keys()
    changed = {
        (key, name)
        for key, inputs in after.items()
        for name in inputs.keys() | before[key].keys()
        if inputs.get(name) != before[key].get(name)
    }
    assert changed == {((SCRIPT, "aigw-worker"), "content")}


OTEL = {"url": "https://otel.example.com/v1/traces", "headers": {"x-team": "sk-test-otel-header"}}


def test_analytics_binds_a_dataset_per_stack_and_can_be_turned_off() -> None:
    """By default the Worker gets an `analytics_engine` binding to a dataset named after its
    stack's Worker; `analytics: false` removes it (and with it the Worker's events)."""

    def analytics(config: dict[str, object], stack: str = "dev") -> list[dict[str, Any]]:
        bindings = reveal(run_program(config, stack=stack).one(SCRIPT).inputs["bindings"])
        return [b for b in bindings if b["type"] == "analytics_engine"]

    assert analytics(MINIMAL) == [
        {"name": "ANALYTICS", "type": "analytics_engine", "dataset": "aigw_dev"}
    ]
    assert analytics(MINIMAL, stack="prod")[0]["dataset"] == "aigw_prod"
    assert analytics(MINIMAL | {"analytics": "false"}) == []


def test_otels_reach_the_gateway_as_a_secret() -> None:
    """Each OpenTelemetry exporter reaches the AI Gateway's `otels`, kept secret as a whole."""
    exporter = OTEL | {"authorization": "Bearer sk-test-otel-auth", "contentType": "protobuf"}
    gateway = run_program(MINIMAL | {"otels": json.dumps([exporter, OTEL])}).one(GATEWAY)
    assert is_secret_input(gateway.inputs["otels"])
    assert reveal(gateway.inputs["otels"]) == [
        {
            "url": OTEL["url"],
            "headers": OTEL["headers"],
            "authorization": "Bearer sk-test-otel-auth",
            "contentType": "protobuf",
        },
        {"url": OTEL["url"], "headers": OTEL["headers"], "contentType": "json"},
    ]


def test_logpush_sets_the_gateway_public_key() -> None:
    """`logpush` turns the gateway's Logpush on with its public key; unset, it is off."""
    key = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----"
    gateway = run_program(MINIMAL | {"logpush": {"publicKey": key}}).one(GATEWAY)
    assert (gateway.inputs["logpush"], gateway.inputs["logpushPublicKey"]) == (True, key)
    default = run_program(MINIMAL).one(GATEWAY)
    assert default.inputs["logpush"] is False and "logpushPublicKey" not in default.inputs
