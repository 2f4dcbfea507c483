"""The Worker script, its secret bindings, its addresses, and the generated client token."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import cloudflare as cloudflare_api
import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_random as random

from infra.providers import secret_values
from infra.secret_settings import GENERATED_TOKEN_LENGTH
from infra.settings import DEFAULT_CLIENT, Settings, rate_limit_bindings
from infra.worker.render import COMPATIBILITY_DATE, MAIN_MODULE

WORKERS_DEV = "workers.dev"
WORKER_OBSERVABILITY: cloudflare.WorkersScriptObservabilityArgsDict = {
    "enabled": True,
    "head_sampling_rate": 1.0,
    "logs": {"enabled": True, "invocation_logs": True, "head_sampling_rate": 1.0, "persist": True},
}
"""Workers Logs on, every request logged: given whole, each field at the value the API would fill
in (terraform-provider-cloudflare internal/services/workers_script: the schema's defaults, and
resource_test.go, where the API fills `head_sampling_rate` and `logs` when only `enabled` is
given), so that a refresh reads back what was sent and plans nothing. One event per request costs
little beside the requests it logs, and the failover warnings must not be sampled away, so the
rate is not a setting."""
NAMESPACE_ID_RANGE = 2**31 - 1
"""Rate-limit namespace ids are positive integers (as text); kept within a signed 32-bit int."""


class WorkersSubdomainError(Exception):
    """The account's workers.dev subdomain could not be read; the message says what to do."""


def secret_bindings(
    provider_keys: Mapping[str, Sequence[str]],
    client_tokens: Mapping[str, str | Sequence[str]],
    gateway_token: str,
) -> list[cloudflare.WorkersScriptBindingArgsDict]:
    """The Worker's `secret_text` bindings (DESIGN §3), one value per line."""
    return [
        {"name": name, "type": "secret_text", "text": text}
        for name, text in secret_values(provider_keys, client_tokens, gateway_token).items()
    ]


def rate_limit_namespace_id(account_id: str, worker_name: str, binding: str) -> str:
    """A Rate Limiting namespace id of its own for this account, Worker and binding.

    Cloudflare counts per namespace id across the whole account, so two stacks (two Workers)
    sharing an id would share counters; derived from all three, ids differ between stacks and
    stay the same from one `pulumi up` to the next.
    """
    digest = hashlib.sha256(f"{account_id}/{worker_name}/{binding}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big") % NAMESPACE_ID_RANGE + 1)


def rate_limit_binding_args(settings: Settings) -> list[cloudflare.WorkersScriptBindingArgsDict]:
    """The Worker's `ratelimit` bindings (DESIGN §3): one per distinct client {limit, period}."""
    return [
        {
            "name": binding,
            "type": "ratelimit",
            "namespace_id": rate_limit_namespace_id(
                settings.account_id, settings.worker_name, binding
            ),
            "simple": {"limit": rate.limit, "period": rate.period},
        }
        for binding, rate in rate_limit_bindings(settings).items()
    ]


def exported_tokens(client_tokens: Mapping[str, Sequence[str]]) -> dict[str, str | list[str]]:
    """The `clientTokens` output: a client's token, or the list of its tokens while it rotates."""
    return {
        client: tokens[0] if len(tokens) == 1 else list(tokens)
        for client, tokens in client_tokens.items()
    }


def workers_dev_url(worker_name: str, account_subdomain: str) -> str:
    """The Worker's address on the account's workers.dev subdomain."""
    return f"https://{worker_name}.{account_subdomain}.{WORKERS_DEV}"


def lookup_workers_subdomain(account_id: str, api_token: str | None) -> str:
    """Read the account's workers.dev subdomain (`<sub>` in `<worker>.<sub>.workers.dev`).

    pulumi-cloudflare 6 has no data source for it, so this asks the Cloudflare API directly with
    the official SDK, which also honours `CLOUDFLARE_API_TOKEN` and `CLOUDFLARE_BASE_URL`.
    """
    client = cloudflare_api.Cloudflare(api_token=api_token, max_retries=2, timeout=30.0)
    if not (client.api_token or client.api_key or client.user_service_key):
        raise WorkersSubdomainError(
            "no Cloudflare credentials to read the account's workers.dev subdomain with: "
            "export CLOUDFLARE_API_TOKEN or pulumi config set --secret cloudflare:apiToken <token>"
        )
    try:
        return client.workers.subdomains.get(account_id=account_id).subdomain
    except cloudflare_api.APIStatusError as error:
        raise WorkersSubdomainError(
            f"could not read the workers.dev subdomain of account {account_id} "
            f"(Cloudflare API answered {error.status_code}); claim one in the dashboard "
            "(Workers & Pages, Your subdomain), check that the API token has Workers Scripts "
            "Edit on this account, or set aigw:customDomain and aigw:workersDev false"
        ) from None
    except cloudflare_api.APIError as error:
        raise WorkersSubdomainError(
            f"could not read the workers.dev subdomain of account {account_id}: "
            f"{type(error).__name__}; check the network and CLOUDFLARE_API_TOKEN"
        ) from None


def generate_client_token(name: str, client: str, parent: pulumi.Resource) -> random.RandomPassword:
    """One client's random token; letters and digits only, so it never holds a binding separator.

    The `default` client's keeps the resource name it always had, so its token survives upgrades.
    """
    suffix = "" if client == DEFAULT_CLIENT else f"-{client}"
    return random.RandomPassword(
        f"{name}-client-token{suffix}",
        length=GENERATED_TOKEN_LENGTH,
        special=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )


ANALYTICS_BINDING = "ANALYTICS"
"""The Worker's Workers Analytics Engine binding (worker_template/analytics.js.j2 writes to it)."""


def analytics_binding_args(settings: Settings) -> list[cloudflare.WorkersScriptBindingArgsDict]:
    """The Worker's `analytics_engine` binding to this stack's dataset, unless analytics is off.

    Cloudflare creates the dataset on the first write (developers.cloudflare.com/analytics/
    analytics-engine/get-started/); pulumi-cloudflare 6.23 `WorkersScriptBindingArgs` takes it
    as `type` "analytics_engine" with `dataset`.
    """
    if not settings.analytics:
        return []
    return [
        {
            "name": ANALYTICS_BINDING,
            "type": "analytics_engine",
            "dataset": settings.analytics_dataset,
        }
    ]


def create_script(
    name: str,
    settings: Settings,
    content: str,
    bindings: pulumi.Output[list[cloudflare.WorkersScriptBindingArgsDict]],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> cloudflare.WorkersScript:
    """The Worker: the rendered ES module with its secrets bound, never written into its source."""
    return cloudflare.WorkersScript(
        f"{name}-worker",
        account_id=settings.account_id,
        script_name=settings.worker_name,
        main_module=MAIN_MODULE,
        content=content,
        compatibility_date=COMPATIBILITY_DATE,
        bindings=bindings,
        observability=WORKER_OBSERVABILITY,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def create_workers_dev_route(
    name: str, settings: Settings, script: cloudflare.WorkersScript, parent: pulumi.Resource
) -> cloudflare.WorkersScriptSubdomain:
    """Serve the Worker on `<worker>.<account subdomain>.workers.dev`."""
    return cloudflare.WorkersScriptSubdomain(
        f"{name}-workers-dev",
        account_id=settings.account_id,
        script_name=script.script_name,
        enabled=True,
        # Preview URLs would expose every uploaded version; only the deployed one is served.
        previews_enabled=False,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[script]),
    )


def create_custom_domain(
    name: str, settings: Settings, script: cloudflare.WorkersScript, parent: pulumi.Resource
) -> cloudflare.WorkersCustomDomain | None:
    """Serve the Worker on `customDomain.hostname` when one is configured."""
    domain = settings.custom_domain
    if domain is None:
        return None
    return cloudflare.WorkersCustomDomain(
        f"{name}-custom-domain",
        account_id=settings.account_id,
        hostname=domain.hostname,
        zone_id=domain.zone_id,
        service=script.script_name,
        # A new workerName replaces the attachment with one for the same hostname. Created first,
        # the new one would take over the hostname's attachment, and deleting the old id could
        # then detach it: the old goes first, leaving the hostname unserved for a moment.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[script], delete_before_replace=True),
    )
