"""aigw: an AI Gateway behind a key-rotating, client-authenticating Worker (`pulumi up`)."""

from __future__ import annotations

import pulumi

from infra.resources.component import AigwGateway, AigwGatewayArgs
from infra.resources.script import WorkersSubdomainError, lookup_workers_subdomain
from infra.setting_forms import KNOWN_KEYS
from infra.settings import NAMESPACE, SettingsError, load


def stack_config() -> dict[str, str]:
    """Every `aigw:` value of this stack, without the namespace; an empty value counts as unset."""
    config = pulumi.Config(NAMESPACE)
    raw = {key: config.get(key) for key in KNOWN_KEYS}
    # Pulumi hands the program the stack's whole config: an `aigw:` key that aigw does not know
    # is a typo that would otherwise be ignored silently, so it is passed on and refused.
    prefix = f"{NAMESPACE}:"
    every_key = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.get_config_env())
    for full_key in every_key:
        key = full_key.removeprefix(prefix)
        if full_key.startswith(prefix) and key not in raw:
            raw[key] = pulumi.runtime.get_config(full_key)
    # Pulumi.yaml declares optional keys with the default "" (a key without a default is required).
    return {key: value for key, value in raw.items() if value is not None and value != ""}


def cloudflare_api_token() -> str | None:
    """The token the Cloudflare provider uses when it comes from stack config (else the env's)."""
    return pulumi.Config("cloudflare").get("apiToken")


# Validate everything before registering anything: a bad value stops here, with one message.
try:
    settings, secrets = load(stack_config(), pulumi.get_stack())
except SettingsError as error:
    raise pulumi.RunError(str(error)) from None

# The workers.dev URL contains the account's own subdomain, which only the API knows.
workers_subdomain = None
if settings.custom_domain is None:
    try:
        workers_subdomain = lookup_workers_subdomain(settings.account_id, cloudflare_api_token())
    except WorkersSubdomainError as error:
        raise pulumi.RunError(str(error)) from None

# The AI Gateway, its token, the Worker with its secrets, its routes and the client tokens.
aigw = AigwGateway("aigw", AigwGatewayArgs(settings, secrets, workers_subdomain))

pulumi.export("gatewayId", aigw.gateway_id)
pulumi.export("gatewayUrl", aigw.gateway_url)
pulumi.export("workerName", aigw.worker_name)
pulumi.export("url", aigw.url)
pulumi.export("openaiBaseUrl", aigw.openai_base_url)
pulumi.export("clientTokens", aigw.client_tokens)
# Which config entry each key id (as `aigw keys` shows it) is: how a key to replace is found.
pulumi.export("keyPlaces", aigw.key_places)
