"""The Cloudflare AI Gateway and the token the Worker presents to it (`cf-aig-authorization`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import pulumi
import pulumi_cloudflare as cloudflare

from infra.client_policies import Budget
from infra.secret_settings import OtelExporter
from infra.setting_forms import LOG_RETENTION_RANGE, SCALAR_SETTINGS
from infra.settings import Settings, spend_limit_rules

AI_GATEWAY_RUN = "AI Gateway Run"
"""The account permission group that lets a token send requests through an authenticated gateway."""
PERMISSION_GROUPS_LIMIT = 1000
"""How many permission groups the lookup fetches (the account has a few hundred)."""
CLIENT_METADATA = "client"
"""The `cf-aig-metadata` field in which the Worker names the client (see worker/pool.py)."""
GATEWAY_RULE_ID = "aigw-gateway"
"""The id of the gateway-wide spend-limit rule."""
FREE_PLAN_MAX_LOGS = 100_000
"""The most logs AI Gateway stores on the Workers Free plan, across all of an account's gateways.

Source: https://developers.cloudflare.com/ai-gateway/reference/limits/ ("Log limits", read 2026):
100,000 per account on the free plan and 10 million per gateway on paid, for the Legacy Logs of
accounts created before 2026-09-24 (later accounts' logs follow Workers Logs' limits). Whether the
API refuses a larger `log_management` on Free or caps it is not documented."""


class PermissionGroup(Protocol):
    """What the permission-group lookup returns per group."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


def spend_limit_rule_id(client: str | None) -> str:
    """A rule's id, fixed by its client's name so that `pulumi up` updates the rule in place (a
    rule without an id gets the provider's one default id, and every rule would collide)."""
    return GATEWAY_RULE_ID if client is None else f"aigw-client-{client}"


def spend_limit_rule(
    client: str | None, budget: Budget
) -> cloudflare.AiGatewaySpendLimitsRuleArgsDict:
    """One AI Gateway spend-limit rule: over one client's requests, or over all (client None)."""
    rule: cloudflare.AiGatewaySpendLimitsRuleArgsDict = {
        "id": spend_limit_rule_id(client),
        "enabled": True,
        "limit_type": "cost",
        "limit": budget.limit,
        "window": budget.window,
        "technique": budget.technique,
    }
    if client is not None:
        # The Worker names the client in cf-aig-metadata; the rule counts only its requests.
        rule["metadata"] = {CLIENT_METADATA: {"mode": "filter", "values": [client]}}
    return rule


def spend_limits(
    settings: Settings, clients: Iterable[str]
) -> cloudflare.AiGatewaySpendLimitsArgsDict:
    """Every budget as a spend-limit rule; always given, so removing the last budget removes it
    (the provider keeps Cloudflare's value of an input left out)."""
    rules = [
        spend_limit_rule(client, budget)
        for client, budget in spend_limit_rules(settings, clients).items()
    ]
    return {"enabled": bool(rules), "rules": rules}


def gateway_args(settings: Settings, clients: Iterable[str]) -> dict[str, Any]:
    """The `AiGateway` inputs for `settings` and every client's name (pure, so tests need no
    mocks)."""
    rate = settings.rate_limit
    args: dict[str, Any] = {
        "account_id": settings.account_id,
        "ai_gateway_id": settings.gateway_id,
        # New gateways must be authenticated (the API refuses false); the Worker sends the token.
        "authentication": True,
        "cache_ttl": settings.cache_ttl,
        "cache_invalidate_on_update": settings.cache_invalidate_on_update,
        "collect_logs": settings.collect_logs,
        # The API has no "off" switch for rate limiting: limit 0 and interval 0 mean no limit.
        "rate_limiting_limit": rate.limit if rate else 0,
        "rate_limiting_interval": rate.interval if rate else 0,
        "rate_limiting_technique": rate.technique if rate else "fixed",
        "spend_limits": spend_limits(settings, clients),
    }
    # Always given, the default included: an input left out keeps whatever Cloudflare holds.
    for key, setting in SCALAR_SETTINGS.items():
        if setting.gateway_input:
            args[setting.gateway_input] = settings.scalars[key]
    if settings.log_retention is not None:
        args["log_management"] = settings.log_retention.max_logs
        args["log_management_strategy"] = settings.log_retention.strategy
    # Always given, so that removing the setting turns Logpush off (the provider keeps
    # Cloudflare's value of an input left out).
    args["logpush"] = settings.logpush is not None
    if settings.logpush is not None:
        args["logpush_public_key"] = settings.logpush.public_key
    return args


SECRET_INPUTS = frozenset({"otels"})
"""`AiGateway` inputs create_gateway sets from the secrets, outside the pure `gateway_args`."""


def otel_args(exporters: Sequence[OtelExporter]) -> list[cloudflare.AiGatewayOtelArgsDict]:
    """The gateway's `otels` input: one entry per OpenTelemetry collector (pulumi-cloudflare
    6.23 `AiGatewayOtelArgs`: `url`, `headers` required, `authorization`, `content_type`)."""
    entries: list[cloudflare.AiGatewayOtelArgsDict] = []
    for exporter in exporters:
        entry: cloudflare.AiGatewayOtelArgsDict = {
            "url": exporter.url,
            "headers": dict(exporter.headers),
            "content_type": exporter.content_type,
        }
        if exporter.authorization is not None:
            entry["authorization"] = exporter.authorization
        entries.append(entry)
    return entries


def run_permission_group_id(groups: Sequence[PermissionGroup]) -> str:
    """The id of the AI Gateway Run permission group among the account's groups."""
    for group in groups:
        if group.name == AI_GATEWAY_RUN:
            return group.id
    raise pulumi.RunError(
        f"the Cloudflare account lists no {AI_GATEWAY_RUN!r} permission group, so aigw cannot "
        "create the gateway token; create one by hand and set it with "
        "pulumi config set --secret aigw:gatewayToken <token>"
    )


def api_json(value: object) -> str:
    """`value` as JSON text in the form the Cloudflare API gives back and the provider stores.

    The provider keeps a token policy's `resources` as the raw JSON of the API's answer
    (terraform-provider-cloudflare internal/services/account_token/custom.go), which is compact
    with keys in order, as Go's encoding/json writes it (so also `<`, `>`, `&`, U+2028 and
    U+2029 escaped). Any other spelling of the same document differs from what a refresh reads,
    and every `pulumi up` would plan an update.
    """
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for character in "<>&\u2028\u2029":
        text = text.replace(character, f"\\u{ord(character):04x}")
    return text


def token_policies(
    account_id: str, permission_group_id: str
) -> list[cloudflare.AccountTokenPolicyArgsDict]:
    """One policy: AI Gateway Run on this account only."""
    return [
        {
            "effect": "allow",
            "permission_groups": [{"id": permission_group_id}],
            "resources": api_json({f"com.cloudflare.api.account.{account_id}": "*"}),
        }
    ]


def log_retention_warning(settings: Settings) -> str | None:
    """What `pulumi preview` should say about `logRetention.maxLogs`, if anything: above the Free
    plan's store it may not be honoured there (the provider's range, kept, is for paid plans)."""
    retention = settings.log_retention
    if retention is None or retention.max_logs <= FREE_PLAN_MAX_LOGS:
        return None
    return (
        f"aigw:logRetention.maxLogs is {retention.max_logs:,}: on the Workers Free plan AI Gateway "
        f"stores at most {FREE_PLAN_MAX_LOGS:,} logs across all of the account's gateways "
        "(Legacy Logs, accounts created before 2026-09-24), and Cloudflare does not document "
        "whether it refuses or caps a larger value; on Workers Paid a gateway keeps up to "
        f"{LOG_RETENTION_RANGE[1]:,}"
    )


def create_gateway(
    name: str,
    settings: Settings,
    clients: Sequence[str],
    parent: pulumi.Resource,
    otels: Sequence[OtelExporter] = (),
) -> cloudflare.AiGateway:
    """The AI Gateway itself: cache, logs, rate limit, spend limits, log retention, its own
    retries (off unless set), authentication on."""
    warning = log_retention_warning(settings)
    if warning is not None:
        pulumi.log.warn(warning)
    return cloudflare.AiGateway(
        f"{name}-gateway",
        **gateway_args(settings, clients),
        # Secret as a whole: collectors' headers and authorization are credentials. An empty
        # list rather than nothing, so that removing the setting removes the export.
        otels=pulumi.Output.secret(otel_args(otels)),
        # Deleting the gateway deletes its logs; production stacks protect it from destroy.
        opts=pulumi.ResourceOptions(parent=parent, protect=settings.protect),
    )


def create_gateway_token(
    name: str, settings: Settings, parent: pulumi.Resource
) -> cloudflare.AccountToken:
    """An account API token that can only run requests through this account's gateways."""
    groups = cloudflare.get_account_api_token_permission_groups_list_output(
        account_id=settings.account_id,
        max_items=PERMISSION_GROUPS_LIMIT,
        opts=pulumi.InvokeOutputOptions(parent=parent),
    )
    group_id = groups.results.apply(run_permission_group_id)
    return cloudflare.AccountToken(
        f"{name}-gateway-token",
        account_id=settings.account_id,
        name=f"aigw {settings.gateway_id} gateway run",
        policies=group_id.apply(lambda group: token_policies(settings.account_id, group)),
        opts=pulumi.ResourceOptions(parent=parent),
    )
