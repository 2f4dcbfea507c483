"""One component resource that owns everything aigw creates on a Cloudflare account."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from infra.resources import gateway, script
from infra.resources.key_places import key_places
from infra.settings import GATEWAY_HOST, Secrets, Settings, client_names, generated_clients
from infra.worker.render import render_worker

COMPONENT_TYPE = "aigw:index:Gateway"


@dataclass(frozen=True)
class AigwGatewayArgs:
    """Everything the component needs; built by `__main__.py` from stack configuration."""

    settings: Settings
    """Validated, non-secret settings (rendered into the Worker)."""
    secrets: Secrets
    """Provider keys and optional client / gateway tokens; only ever bound as secrets."""
    workers_subdomain: str | None = None
    """The account's workers.dev subdomain; needed when the Worker has no custom domain."""


class AigwGateway(pulumi.ComponentResource):
    """An AI Gateway behind a key-rotating, client-authenticating Worker."""

    gateway_id: pulumi.Output[str]
    """The AI Gateway id."""
    gateway_url: pulumi.Output[str]
    """`https://gateway.ai.cloudflare.com/v1/<account>/<gateway>`."""
    worker_name: pulumi.Output[str]
    """The Worker script name."""
    url: pulumi.Output[str]
    """Where clients reach the Worker: the custom domain if set, else workers.dev."""
    openai_base_url: pulumi.Output[str]
    """`<url>/v1`, the base URL for OpenAI SDKs."""
    client_tokens: pulumi.Output[Mapping[str, str | list[str]]]
    """Client name to its token, or to its tokens while it rotates (secret)."""
    key_places: pulumi.Output[dict[str, dict[str, str]]]
    """Provider to key id to its place in the config, `providerKeys.openai[2]` (not secret)."""

    def __init__(
        self, name: str, args: AigwGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        settings, secrets = args.settings, args.secrets
        if settings.custom_domain is None and args.workers_subdomain is None:
            raise ValueError("a Worker served only on workers.dev needs args.workers_subdomain")
        # Rendered before anything is registered, so a template error leaves nothing half made.
        # Only `settings` goes in: the Worker's source never holds a secret.
        content = render_worker(settings)
        super().__init__(COMPONENT_TYPE, name, {}, opts)

        # Every client is known here (tokens come only from config), so a "*" budget becomes one
        # spend-limit rule per client without an entry of its own.
        every_client = client_names(settings, secrets)
        ai_gateway = gateway.create_gateway(name, settings, every_client, self, secrets.otels)

        # The token the Worker sends upstream: the configured one, or one created for this gateway.
        token_resources: list[pulumi.Resource] = []
        if secrets.gateway_token is not None:
            gateway_token: pulumi.Output[str] = pulumi.Output.secret(secrets.gateway_token)
        else:
            account_token = gateway.create_gateway_token(name, settings, self)
            token_resources.append(account_token)
            gateway_token = pulumi.Output.secret(account_token.value)

        # Client tokens: the configured ones, and a generated one for every client without.
        generated = {
            client: script.generate_client_token(name, client, self)
            for client in generated_clients(settings, secrets)
        }
        token_resources.extend(generated.values())
        configured = dict(secrets.client_tokens)

        def every_token(results: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
            found = {**configured, **{client: (token,) for client, token in results.items()}}
            return {client: found[client] for client in every_client}

        # Output.all of nothing is a list, not a dict.
        results: pulumi.Output[Mapping[str, str]] = (
            pulumi.Output.all(**{client: password.result for client, password in generated.items()})
            if generated
            else pulumi.Output.from_input({})
        )
        tokens: pulumi.Output[dict[str, tuple[str, ...]]] = pulumi.Output.secret(
            results.apply(every_token)
        )
        client_tokens: pulumi.Output[Mapping[str, str | list[str]]] = tokens.apply(
            script.exported_tokens
        )

        provider_keys = secrets.provider_keys
        # Secret as a whole: the engine keeps every binding value encrypted in state.
        bindings: pulumi.Output[list[cloudflare.WorkersScriptBindingArgsDict]] = (
            pulumi.Output.secret(
                pulumi.Output.all(tokens, gateway_token).apply(
                    lambda values: [
                        *script.secret_bindings(provider_keys, values[0], values[1]),
                        *script.rate_limit_binding_args(settings),
                        *script.analytics_binding_args(settings),
                    ]
                )
            )
        )
        # The script waits for the gateway so that its first request finds one to call.
        worker_script = script.create_script(
            name, settings, content, bindings, self, depends_on=[ai_gateway, *token_resources]
        )

        self.url = self._address(name, args, worker_script)
        self.gateway_id = ai_gateway.ai_gateway_id
        self.gateway_url = ai_gateway.ai_gateway_id.apply(
            lambda gateway_id: f"https://{GATEWAY_HOST}/v1/{settings.account_id}/{gateway_id}"
        )
        self.worker_name = worker_script.script_name
        self.openai_base_url = self.url.apply(lambda url: f"{url}/v1")
        self.client_tokens = client_tokens
        self.key_places = pulumi.Output.from_input(key_places(provider_keys))
        self.register_outputs(
            {
                "gatewayId": self.gateway_id,
                "gatewayUrl": self.gateway_url,
                "workerName": self.worker_name,
                "url": self.url,
                "openaiBaseUrl": self.openai_base_url,
                "clientTokens": self.client_tokens,
                "keyPlaces": self.key_places,
            }
        )

    def _address(
        self, name: str, args: AigwGatewayArgs, worker_script: cloudflare.WorkersScript
    ) -> pulumi.Output[str]:
        """Create the Worker's routes and return the URL clients should use."""
        settings = args.settings
        custom = script.create_custom_domain(name, settings, worker_script, self)
        route = (
            script.create_workers_dev_route(name, settings, worker_script, self)
            if settings.workers_dev
            else None
        )
        if custom is not None:
            return custom.hostname.apply(lambda hostname: f"https://{hostname}")
        # __init__ checked that a Worker without a custom domain has a workers.dev subdomain.
        assert route is not None and args.workers_subdomain is not None
        subdomain = args.workers_subdomain
        return route.script_name.apply(
            lambda worker_name: script.workers_dev_url(worker_name, subdomain)
        )
