"""A second `pulumi up` plans nothing: each input, read back as the provider reads it, is unchanged.

pulumi-cloudflare bridges terraform-provider-cloudflare. After `pulumi up` or `pulumi refresh`, the
state holds what the provider's Read makes of Cloudflare's answer, and the next plan compares it
with the inputs. The normalizations below are written from the provider's source (the file each
one comes from is named), not from aigw's code, so a field that drifts in a future change fails
here rather than in someone's production plan.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_harness import ACCOUNT, ZONE, run_program

from infra.resources.gateway import api_json, token_policies

TOKEN = "cloudflare:index/accountToken:AccountToken"
SCRIPT = "cloudflare:index/workersScript:WorkersScript"

MINIMAL: dict[str, object] = {"accountId": ACCOUNT, "providerKeys": {"openai": ["sk-test-a"]}}
FULL: dict[str, object] = MINIMAL | {
    "providerKeys": {"openai": ["sk-test-a", "sk-test-b"], "anthropic": ["sk-ant-test-c"]},
    "clientTokens": {"laptop": "laptop-token-0123456789"},
    "gatewayToken": "gateway-token-for-tests",
    "rateLimit": {"limit": 600, "interval": 60},
    "logRetention": {"maxLogs": 100000, "strategy": "DELETE_OLDEST"},
    "customDomain": {"zoneId": ZONE, "hostname": "ai.example.com"},
    "budget": {"limit": 50, "window": 86400},
    "clients": {
        "laptop": {"rateLimit": {"limit": 10, "period": 60}, "budget": {"limit": 5, "window": 3600}}
    },
}

GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
"""What Go's encoding/json.Marshal escapes in strings beyond JSON's own needs (its HTML-safe
default), which the Cloudflare API's answers and Terraform's `jsonencode` are written with."""


def go_marshal(value: Any) -> str:
    """`value` as Go's encoding/json.Marshal writes it: no white space, object keys sorted, the
    characters of `GO_ESCAPES` escaped, every other character as itself (UTF-8)."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{go_marshal(key)}:{go_marshal(item)}" for key, item in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_marshal(item) for item in value) + "]"
    if isinstance(value, str):
        quoted = json.dumps(value, ensure_ascii=False)
        return "".join(GO_ESCAPES.get(character, character) for character in quoted)
    return json.dumps(value)


def read_back_account_token(inputs: dict[str, Any]) -> dict[str, Any]:
    """internal/services/account_token/custom.go, `unmarshalCustomWithSnapshot`: each policy's
    `resources` becomes the raw JSON of the API's answer, which is compact (custom_test.go,
    `TestUnmarshalCustom`: `{"com.cloudflare.api.account.123":"*"}`; the acceptance tests in
    resource_test.go expect an empty plan for `jsonencode` output). `sortPolicies`: without
    prior state, permission groups in id order and policies by effect, then resources."""
    state = copy.deepcopy(inputs)
    for policy in state["policies"]:
        policy["resources"] = go_marshal(json.loads(policy["resources"]))
        policy["permissionGroups"].sort(key=lambda group: group["id"])
    state["policies"].sort(key=lambda policy: (policy["effect"], policy["resources"]))
    return state


def read_back_workers_script(inputs: dict[str, Any]) -> dict[str, Any]:
    """internal/services/workers_script/resource.go, `Read`: the script settings' `observability`
    is copied over the state, and the API fills in what was not given: `head_sampling_rate` and
    `logs` (resource_test.go, `TestAccCloudflareWorkerScript_ObservabilityTraces` ignores exactly
    these on import). schema.go: both sampling rates default to 1, and `logs.persist` to true."""
    state = copy.deepcopy(inputs)
    observability = state.get("observability")
    if observability is not None:
        observability.setdefault("headSamplingRate", 1.0)
        logs = observability.setdefault(
            "logs", {"enabled": observability["enabled"], "invocationLogs": True}
        )
        logs.setdefault("headSamplingRate", 1.0)
        logs.setdefault("persist", True)
    return state


READ_BACK: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    TOKEN: read_back_account_token,
    SCRIPT: read_back_workers_script,
}
"""Resource types whose Read changes what was sent. The provider's other resources aigw creates
(ai_gateway, workers_script_subdomain, workers_custom_domain) read back every field aigw sends
as sent: their resource.go files unmarshal the API's values, with no custom normalization."""


@pytest.mark.parametrize("config", [MINIMAL, FULL], ids=["minimal", "full"])
def test_every_input_survives_the_providers_read_back(config: dict[str, object]) -> None:
    """For every Cloudflare resource of the stack, the inputs normalized as the provider reads
    them back are the inputs sent: the next plan has nothing to update."""
    run = run_program(config)
    cloudflare = [r for r in run.registrations if r.type.startswith("cloudflare:")]
    assert {r.type for r in cloudflare} >= ({SCRIPT} if config is FULL else {SCRIPT, TOKEN})
    for registration in cloudflare:
        read_back = READ_BACK.get(registration.type, copy.deepcopy)
        assert read_back(registration.inputs) == registration.inputs, registration.name


def test_the_token_policy_is_byte_for_byte_the_providers_fixture() -> None:
    """With the account id of the provider's own unit test, `resources` is exactly the string
    its Read stores from the API's answer (account_token/custom_test.go, `TestUnmarshalCustom`)."""
    [policy] = token_policies("123", "permgroup1")
    assert policy["resources"] == '{"com.cloudflare.api.account.123":"*"}'


@pytest.mark.parametrize(
    "document",
    [
        {"com.cloudflare.api.account.123": "*"},
        {"b": {"z": "*", "a": "*"}, "a": "*"},
        {"com.cloudflare.api.account.<&>": "é\u2028\u2029"},
    ],
)
def test_json_for_the_provider_is_what_go_writes(document: dict[str, Any]) -> None:
    """Whatever document aigw hands the provider as JSON text is written as the API gives it
    back: keys in order, no white space, Go's escapes."""
    assert api_json(document) == go_marshal(document)


def test_go_marshal_writes_as_go_does() -> None:
    """The test's own reference, checked against output Go's encoding/json is known to give."""
    assert go_marshal({"b": "<&>", "a": [1, True, None]}) == (
        '{"a":[1,true,null],"b":"\\u003c\\u0026\\u003e"}'
    )
