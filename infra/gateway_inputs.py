"""Every input of pulumi-cloudflare's `AiGateway`, decided: the setting that sets it, or why not.

tests/resources/test_gateway_inputs.py reads the inputs of the installed provider's `AiGatewayArgs`
and fails on one that is in neither table, so that a provider release cannot add a gateway feature
that aigw silently leaves at Cloudflare's default. The settings reference lists both tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from infra.setting_forms import SCALAR_SETTINGS

_DOCS = "https://developers.cloudflare.com/ai-gateway"

SET_BY_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "account_id": "accountId",
        "ai_gateway_id": "gatewayId",
        "cache_ttl": "cacheTtl",
        "cache_invalidate_on_update": "cacheInvalidateOnUpdate",
        "collect_logs": "collectLogs",
        "rate_limiting_limit": "rateLimit",
        "rate_limiting_interval": "rateLimit",
        "rate_limiting_technique": "rateLimit",
        "log_management": "logRetention",
        "log_management_strategy": "logRetention",
        # One rule per budget: the gateway's `budget` and each client's (`clients.<name>.budget`).
        "spend_limits": "budget",
        "otels": "otels",
        "logpush": "logpush",
        "logpush_public_key": "logpush",
        **{
            setting.gateway_input: key
            for key, setting in SCALAR_SETTINGS.items()
            if setting.gateway_input
        },
    }
)
"""`AiGateway` input to the aigw setting that decides its value."""

LEFT_OUT_OF_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "authentication": (
            "Always `true`, not a setting: the Worker presents its gateway token on every "
            "request, and Cloudflare refuses new unauthenticated gateways."
        ),
        "zdr": (
            "Zero Data Retention applies only to Unified Billing requests, made with "
            "Cloudflare's credentials; every request of the Worker carries a pool key of your "
            "own, so it would change nothing "
            f"([Unified Billing]({_DOCS}/features/unified-billing/#zero-data-retention-zdr))."
        ),
        "store_id": (
            "The Secrets Store of keys kept in the gateway (BYOK). aigw keeps its keys in the "
            "Worker's secrets, because the Worker must choose the key of each attempt to fail "
            f"over and to rest keys ([BYOK]({_DOCS}/configuration/bring-your-own-keys/))."
        ),
        "guardrails": (
            "Guardrails buffer a streamed response whole before evaluating it, so a request "
            "through the gateway no longer streams; they add about 500 ms per request and are "
            "billed as Workers AI use "
            f"([usage considerations]({_DOCS}/features/guardrails/usage-considerations/)). "
            "Turning them on in the dashboard would break the Worker's streaming promise."
        ),
        "dlp": (
            "Data Loss Prevention scans with Cloudflare One DLP profiles, which aigw does not "
            "create, and buffers a streamed response whole when it checks responses "
            f"([DLP]({_DOCS}/features/dlp/))."
        ),
        "stripe": (
            "Sends usage events to a Stripe account, with a Stripe secret: billing your own "
            "customers is outside aigw, and AI Gateway's documentation does not describe it."
        ),
    }
)
"""`AiGateway` input that is no setting of aigw's, to why."""


def undecided(inputs: Iterable[str]) -> list[str]:
    """The inputs in neither table, sorted."""
    return sorted(set(inputs) - set(SET_BY_SETTINGS) - set(LEFT_OUT_OF_SETTINGS))


def no_longer_inputs(inputs: Iterable[str]) -> list[str]:
    """The entries of either table that are not an input (any more), sorted."""
    return sorted((set(SET_BY_SETTINGS) | set(LEFT_OUT_OF_SETTINGS)) - set(inputs))
