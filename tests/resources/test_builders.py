"""The pure builders behind the resources, and the workers.dev lookup, without Pulumi mocks."""

from __future__ import annotations

import pulumi
import pytest
from pulumi_harness import ACCOUNT

from infra.resources.gateway import (
    AI_GATEWAY_RUN,
    gateway_args,
    run_permission_group_id,
    spend_limits,
    token_policies,
)
from infra.resources.script import (
    WorkersSubdomainError,
    lookup_workers_subdomain,
    rate_limit_binding_args,
    rate_limit_namespace_id,
    secret_bindings,
    workers_dev_url,
)
from infra.settings import LogRetention, RateLimit, Settings, load
from tests.cloudflare_fake import WORKERS_SUBDOMAIN, FakeCloudflare

SETTINGS = Settings(account_id=ACCOUNT, gateway_id="gw", worker_name="wk", providers=("openai",))


class Group:
    """A permission group as the lookup returns it."""

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name


def test_secret_bindings_put_one_value_per_line() -> None:
    """Keys and `name:token` entries are separated by new lines, one binding per provider; a
    rotating client has one entry per token."""
    bindings = secret_bindings(
        {"google-ai-studio": ("key-a", "key-b"), "workers-ai": ("key-c",)},
        {
            "laptop": "token-laptop-01234567",
            "ci": ("token-ci-0123456789ab", "token-ci-new-01234567"),
        },
        "gateway-token",
    )
    assert bindings == [
        {"name": "GOOGLE_AI_STUDIO_API_KEYS", "type": "secret_text", "text": "key-a\nkey-b"},
        {"name": "WORKERS_AI_API_KEYS", "type": "secret_text", "text": "key-c"},
        {
            "name": "CLIENT_TOKENS",
            "type": "secret_text",
            "text": "laptop:token-laptop-01234567\nci:token-ci-0123456789ab\n"
            "ci:token-ci-new-01234567",
        },
        {"name": "GATEWAY_TOKEN", "type": "secret_text", "text": "gateway-token"},
    ]


def test_workers_dev_url() -> None:
    """The workers.dev address is `<worker>.<account subdomain>.workers.dev`."""
    assert workers_dev_url("aigw-dev", "team") == "https://aigw-dev.team.workers.dev"


@pytest.mark.parametrize(
    ("rate_limit", "expected"),
    [
        (None, (0, 0, "fixed")),
        (RateLimit(100, 60, "sliding"), (100, 60, "sliding")),
    ],
)
def test_gateway_rate_limit(rate_limit: RateLimit | None, expected: tuple[int, int, str]) -> None:
    """No rate limit is limit 0 and interval 0; a configured one passes through."""
    args = gateway_args(Settings(**{**SETTINGS.__dict__, "rate_limit": rate_limit}), ())
    assert (
        args["rate_limiting_limit"],
        args["rate_limiting_interval"],
        args["rate_limiting_technique"],
    ) == expected


def test_gateway_log_retention() -> None:
    """Log retention maps to log_management and its strategy."""
    retention = LogRetention(50_000, "DELETE_OLDEST")
    args = gateway_args(Settings(**{**SETTINGS.__dict__, "log_retention": retention}), ())
    assert (args["log_management"], args["log_management_strategy"]) == (50_000, "DELETE_OLDEST")


def test_run_permission_group_is_found_by_exact_name() -> None:
    """The AI Gateway Run group is picked by its exact name, not a near one."""
    groups = [Group("1", "AI Gateway Read"), Group("2", "AI Gateway Run"), Group("3", "Run")]
    assert run_permission_group_id(groups) == "2"


def test_missing_run_permission_group_says_what_to_do() -> None:
    """Without the group the program explains how to give a token by hand."""
    with pytest.raises(
        pulumi.RunError, match=rf"no '{AI_GATEWAY_RUN}' permission group.*gatewayToken"
    ):
        run_permission_group_id([Group("1", "AI Gateway Read")])


def test_token_policy_covers_only_this_account() -> None:
    """The token's one policy allows the group on this account and nothing else."""
    [policy] = token_policies(ACCOUNT, "group-id")
    assert policy == {
        "effect": "allow",
        "permission_groups": [{"id": "group-id"}],
        "resources": f'{{"com.cloudflare.api.account.{ACCOUNT}":"*"}}',
    }


def test_lookup_workers_subdomain_reads_the_account(cloudflare_api: FakeCloudflare) -> None:
    """The lookup asks the account's workers subdomain with the given token."""
    cloudflare_api.token = "explicit-token"
    assert lookup_workers_subdomain(ACCOUNT, "explicit-token") == WORKERS_SUBDOMAIN
    assert cloudflare_api.requests == [
        (f"/accounts/{ACCOUNT}/workers/subdomain", "Bearer explicit-token")
    ]


def test_lookup_workers_subdomain_error_names_the_fixes(
    cloudflare_api: FakeCloudflare,
) -> None:
    """A refused lookup names the dashboard setting, the token permission and the alternative."""
    cloudflare_api.subdomain_status = 404
    with pytest.raises(WorkersSubdomainError, match=r"answered 404.*Your subdomain.*customDomain"):
        lookup_workers_subdomain(ACCOUNT, None)


POLICIES = {
    "alice": {"budget": {"limit": 25, "window": 86400, "technique": "sliding"}},
    "ci": {"rateLimit": {"limit": 10, "period": 10}},
    "*": {"budget": {"limit": 0.5, "window": 3600}, "rateLimit": {"limit": 60, "period": 60}},
}


def policy_settings(**extra: object) -> Settings:
    """Settings with POLICIES and the given extra `aigw:` values."""
    raw = {"accountId": ACCOUNT, "providerKeys": {"openai": ["sk-test-a"]}, "clients": POLICIES}
    return load(raw | extra, "dev")[0]


def test_spend_limits_one_rule_per_budget_with_stable_ids() -> None:
    """Each budget is an enabled cost rule: a client's filtered on its `client` metadata, the
    gateway's unfiltered; "*" gives each client without an entry its own rule."""
    settings = policy_settings(budget={"limit": 100, "window": 2592000})
    assert spend_limits(settings, ["laptop", "alice", "ci"]) == {
        "enabled": True,
        "rules": [
            {
                "id": "aigw-client-laptop",
                "enabled": True,
                "limit_type": "cost",
                "limit": 0.5,
                "window": 3600,
                "technique": "fixed",
                "metadata": {"client": {"mode": "filter", "values": ["laptop"]}},
            },
            {
                "id": "aigw-client-alice",
                "enabled": True,
                "limit_type": "cost",
                "limit": 25.0,
                "window": 86400,
                "technique": "sliding",
                "metadata": {"client": {"mode": "filter", "values": ["alice"]}},
            },
            {
                "id": "aigw-gateway",
                "enabled": True,
                "limit_type": "cost",
                "limit": 100.0,
                "window": 2592000,
                "technique": "fixed",
            },
        ],
    }


def test_without_budgets_spend_limits_are_off_and_empty() -> None:
    """No budget is an explicit empty, disabled rule list, so removing the last budget removes
    its rule instead of leaving Cloudflare's copy in place."""
    assert gateway_args(SETTINGS, ["default"])["spend_limits"] == {"enabled": False, "rules": []}


def test_rate_limit_bindings_per_distinct_limit() -> None:
    """One `ratelimit` binding per distinct {limit, period}, each with its own namespace id."""
    bindings = rate_limit_binding_args(policy_settings())
    assert [(b["name"], b["type"], b["simple"]) for b in bindings] == [
        ("RATE_LIMIT_10_PER_10S", "ratelimit", {"limit": 10, "period": 10}),
        ("RATE_LIMIT_60_PER_60S", "ratelimit", {"limit": 60, "period": 60}),
    ]
    ids = [b["namespace_id"] for b in bindings]
    assert ids == [
        rate_limit_namespace_id(ACCOUNT, "aigw-dev", "RATE_LIMIT_10_PER_10S"),
        rate_limit_namespace_id(ACCOUNT, "aigw-dev", "RATE_LIMIT_60_PER_60S"),
    ]
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    ("account", "worker", "binding"),
    [
        (ACCOUNT, "aigw-dev", "RATE_LIMIT_60_PER_60S"),
        (ACCOUNT, "aigw-prod", "RATE_LIMIT_60_PER_60S"),
        ("f" * 32, "aigw-dev", "RATE_LIMIT_60_PER_60S"),
        (ACCOUNT, "aigw-dev", "RATE_LIMIT_61_PER_60S"),
    ],
)
def test_namespace_id_is_a_positive_integer_string(account: str, worker: str, binding: str) -> None:
    """Cloudflare wants the id as text holding a positive integer (no leading zero)."""
    namespace_id = rate_limit_namespace_id(account, worker, binding)
    assert namespace_id.isdigit() and not namespace_id.startswith("0")
    assert 1 <= int(namespace_id) < 2**31


def test_namespace_ids_differ_between_stacks_and_stay_put() -> None:
    """Another Worker (stack), another account or another binding gets another id; the same
    three always get the same one, so counters survive `pulumi up`."""
    first = rate_limit_namespace_id(ACCOUNT, "aigw-dev", "RATE_LIMIT_60_PER_60S")
    assert first == rate_limit_namespace_id(ACCOUNT, "aigw-dev", "RATE_LIMIT_60_PER_60S")
    others = {
        rate_limit_namespace_id(ACCOUNT, "aigw-prod", "RATE_LIMIT_60_PER_60S"),
        rate_limit_namespace_id("f" * 32, "aigw-dev", "RATE_LIMIT_60_PER_60S"),
        rate_limit_namespace_id(ACCOUNT, "aigw-dev", "RATE_LIMIT_60_PER_10S"),
    }
    assert first not in others and len(others) == 3
