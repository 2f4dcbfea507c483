"""Renders the Worker's ES module source from settings (pure; no secret ever reaches it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from infra import secret_bindings
from infra.client_policies import ClientPolicy, rate_limit_binding
from infra.settings import Settings
from infra.worker import (
    analytics,
    answers,
    auth,
    body_models,
    cors,
    endpoints,
    headers,
    key_limits,
    rate_limit_headers,
    routing,
    scrubbing,
    verdicts,
)
from infra.worker import policy as client_policy
from infra.worker.config import UPSTREAM_TIMEOUT_MS, WorkerConfig
from infra.worker.policy import budget_text, expiry_text, has_limit

COMPATIBILITY_DATE = "2026-11-01"
"""The Workers compatibility date the Worker is written and tested against (workerd in package.json
supports it); deployed and local runs use the same one."""
MAIN_MODULE = "worker.js"
"""The module name of the rendered source, as uploaded and as served by workerd."""
TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "worker_template"
"""The Worker templates; `pulumi up`, `aigw` and the tests all run from the repository."""
TEMPLATE = "worker.js.j2"
"""The entry template; it includes every other `<concern>.js.j2` into the one module uploaded."""


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        # JavaScript, not HTML: every value goes through `tojson`, which makes a JS literal.
        autoescape=False,
        keep_trailing_newline=True,
    )
    # `tojson` escapes < > & ' (so no `</script>` or quote can end a literal); ensure_ascii turns
    # every other non-ASCII character, U+2028 and U+2029 included, into a \u escape.
    environment.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": True}
    return environment


def render_worker(
    settings: Settings,
    *,
    gateway_url: str | None = None,
    upstream_timeout_ms: int = UPSTREAM_TIMEOUT_MS,
    rotation_offset: int | None = None,
) -> str:
    """Return the Worker's source for `settings`.

    `gateway_url` replaces the AI Gateway base URL (`aigw dev --upstream`); it defaults to
    `settings.gateway_url`. `upstream_timeout_ms` bounds how long the gateway may take to answer
    with headers (tests lower it). `rotation_offset` pins where key rotation starts; deployed
    Workers leave it `None`, a random offset per isolate, and only tests pin it.
    """
    return render_config(
        WorkerConfig.from_settings(
            settings,
            gateway_url=gateway_url,
            upstream_timeout_ms=upstream_timeout_ms,
            rotation_offset=rotation_offset,
        )
    )


def render_config(config: WorkerConfig) -> str:
    """Return the Worker's source for an already built `WorkerConfig`."""
    providers = {
        provider.slug: {
            "slug": provider.slug,
            "binding": provider.binding,
            "keyHeader": provider.key_header,
            "keyPrefix": provider.key_prefix,
            "clientKeyHeaders": list(provider.client_key_headers),
            "clientKeyQuery": provider.client_key_query,
        }
        for provider in config.providers
    }
    # Pairs, not an object literal: a client called `__proto__` must stay an ordinary entry.
    policies = [[name, _policy(policy)] for name, policy in config.clients.items()]
    # Only the configured providers' endpoints: no other provider can be routed to.
    endpoint_table = {
        provider.slug: [_endpoint(endpoint) for endpoint in endpoints.ENDPOINTS[provider.slug]]
        for provider in config.providers
    }
    context: dict[str, Any] = {
        "config": config,
        "providers": providers,
        "endpoint_table": endpoint_table,
        "policies": policies,
        # Each concern's module, for the constants its template renders (`{{ routing.ALLOW }}`).
        "analytics": analytics,
        "answers": answers,
        "auth": auth,
        "body_models": body_models,
        "cors": cors,
        "endpoints": endpoints,
        "headers": headers,
        "key_limits": key_limits,
        "policy": client_policy,
        "rate_limit_headers": rate_limit_headers,
        "routing": routing,
        "scrubbing": scrubbing,
        "secret_bindings": secret_bindings,
        "verdicts": verdicts,
        "uncounted_endpoints": [
            {"path": closed.path, "name": closed.name} for closed in endpoints.UNCOUNTED_ENDPOINTS
        ],
    }
    return _environment().get_template(TEMPLATE).render(context)


def _policy(policy: ClientPolicy) -> dict[str, Any]:
    """A client policy as the Worker reads it: what it checks, and the texts its messages use."""
    rate = policy.rate_limit
    return {
        "expiresMs": None if policy.expires is None else int(policy.expires.timestamp() * 1000),
        "expires": None if policy.expires is None else expiry_text(policy),
        "providers": None if policy.providers is None else list(policy.providers),
        "models": None if policy.models is None else list(policy.models),
        "rateLimit": None
        if rate is None
        else {"binding": rate_limit_binding(rate), "limit": rate.limit, "period": rate.period},
        "budget": None if policy.budget is None else budget_text(policy.budget),
        "endpoints": None if policy.endpoints is None else [list(e) for e in policy.endpoints],
        "limited": has_limit(policy),
    }


def _endpoint(endpoint: endpoints.Endpoint) -> dict[str, Any]:
    """An `ENDPOINTS` entry as the Worker reads it."""
    return {
        "method": endpoint.method,
        "path": endpoint.path,
        "readsBody": endpoint.reads_body,
        "requiresModel": endpoint.requires_model,
        "toolModels": [list(pair) for pair in endpoint.tool_models],
        "refusedFields": list(endpoint.refused_fields),
        "refusedToolPrefix": endpoint.refused_tool_prefix,
        "deferredFields": list(endpoint.deferred_fields),
    }
