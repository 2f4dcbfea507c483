"""Secret settings read and checked (keys, tokens, exporters): described in errors, never shown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import cast

from infra.client_policies import client_name
from infra.providers import BINDING_SEPARATORS, PROVIDERS, secret_values
from infra.secret_bindings import WORKER_VARIABLE_LIMITS, entry_bytes
from infra.setting_forms import MAX_OTEL_EXPORTERS, MIN_CLIENT_TOKEN_LENGTH, OTEL_CONTENT_TYPES
from infra.setting_values import fail, kind_of, show

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")  # an HTTP token (RFC 9110)

GENERATED_TOKEN_LENGTH = 48
"""A generated client token: 48 letters and digits, about 285 random bits, beyond any guessing."""


@dataclass(frozen=True)
class OtelExporter:
    """One OpenTelemetry collector the gateway exports its traces to (AI Gateway `otels`)."""

    url: str
    headers: Mapping[str, str] = field(repr=False, default_factory=lambda: MappingProxyType({}))
    authorization: str | None = field(repr=False, default=None)
    content_type: str = "json"


def read_provider_keys(value: object) -> dict[str, tuple[str, ...]]:
    """`providerKeys` (decoded): each provider's pool of keys."""
    if value is None:
        fail(
            "providerKeys",
            "nothing",
            'it is required: pulumi config set --secret --path "aigw:providerKeys.openai[0]" <key>',
        )
    if not isinstance(value, dict) or not value:
        fail(
            "providerKeys",
            kind_of(value),
            'expected an object of key lists, such as {"openai": ["<key>", …]}',
        )
    pools: dict[str, tuple[str, ...]] = {}
    for slug, keys in value.items():
        if slug not in PROVIDERS:
            fail(
                "providerKeys",
                f"provider {slug!r}",
                f"known providers are {', '.join(PROVIDERS)}",
            )
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not keys:
            fail(
                f"providerKeys.{slug}",
                "an empty or non-list value",
                "expected a list of one or more keys",
            )
        seen: dict[str, int] = {}
        for position, key in enumerate(keys):
            where = f"providerKeys.{slug}[{position}]"
            if not isinstance(key, str) or not key:
                fail(where, "an empty or non-string key", "expected the key as a string")
            if BINDING_SEPARATORS.search(key):
                fail(where, "a key containing white space or a comma", "keys are single tokens")
            _fits_one_variable(where, "a key", key)
            if key in seen:
                fail(
                    where,
                    f"the same key as providerKeys.{slug}[{seen[key]}]",
                    "each key must appear once, or rotation would favour it",
                )
            seen[key] = position
        pools[slug] = tuple(keys)
    return pools


def read_client_tokens(value: object) -> Mapping[str, tuple[str, ...]]:
    """`clientTokens` (decoded): each client's tokens, more than one while it rotates."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict) or not value:
        fail(
            "clientTokens",
            kind_of(value),
            'expected an object such as {"laptop": "<token>"}, or leave it unset to generate one',
        )
    seen: dict[str, str] = {}
    tokens: dict[str, tuple[str, ...]] = {}
    for name, given in value.items():
        client_name("clientTokens", name)
        if isinstance(given, list):
            if not given:
                fail(
                    f"clientTokens.{name}",
                    "an empty list",
                    "expected a token, or a list of one or more while the client rotates",
                )
            paths = [f"clientTokens.{name}[{position}]" for position in range(len(given))]
        else:
            given, paths = [given], [f"clientTokens.{name}"]
        for where, token in zip(paths, given, strict=True):
            _client_token(where, token)
            _fits_one_variable(where, "a name:token entry", f"{name}:{token}")
            if token in seen:
                fail(
                    where,
                    f"the same token as {seen[token]}",
                    "each client needs its own token, and each token is listed once",
                )
            seen[token] = where
        tokens[name] = tuple(cast(list[str], given))
    return MappingProxyType(tokens)


def read_gateway_token(value: object) -> str | None:
    """`gatewayToken`: a Cloudflare API token, or None when the program should create one."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or BINDING_SEPARATORS.search(value):
        fail(
            "gatewayToken",
            "an empty value or one with white space",
            "expected a Cloudflare API token with AI Gateway Run, or leave it unset to create one",
        )
    _fits_one_variable("gatewayToken", "a token", value)
    return value


def read_otels(value: object) -> tuple[OtelExporter, ...]:
    """`otels` (decoded): the gateway's OpenTelemetry exporters."""
    # A secret: values are described by kind only, never shown.
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_OTEL_EXPORTERS:
        fail("otels", kind_of(value), f"expected a list of 1 to {MAX_OTEL_EXPORTERS} exporters")
    return tuple(_otel(f"otels[{index}]", entry) for index, entry in enumerate(value))


def _otel(key: str, entry: object) -> OtelExporter:
    if not isinstance(entry, dict):
        fail(key, kind_of(entry), "expected an object {url, headers, authorization, contentType}")
    extra = sorted(set(entry) - {"url", "headers", "authorization", "contentType"})
    if extra or "url" not in entry:
        problem = f"unknown field {extra[0]!r}" if extra else "no url"
        fail(
            key,
            f"an object with {problem}",
            "fields are url, headers, authorization, contentType",
        )
    url = entry["url"]
    if not isinstance(url, str) or not re.fullmatch(r"https://[^\s/?#]+(/[^\s]*)?", url):
        fail(f"{key}.url", "a value that is not an https:// URL", "expected https://host/path")
    headers = entry.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(name, str)
        and _HEADER_NAME.fullmatch(name)
        and isinstance(text, str)
        and "\n" not in text
        and "\r" not in text
        for name, text in headers.items()
    ):
        fail(
            f"{key}.headers",
            kind_of(headers) if not isinstance(headers, dict) else "an object with a bad entry",
            "expected an object of HTTP header names to one-line text values",
        )
    authorization = entry.get("authorization")
    if authorization is not None and (
        not isinstance(authorization, str) or not authorization.strip() or "\n" in authorization
    ):
        fail(f"{key}.authorization", kind_of(authorization), "expected one line of text")
    content_type = entry.get("contentType", "json")
    if content_type not in OTEL_CONTENT_TYPES:
        fail(
            f"{key}.contentType",
            show(content_type),
            "expected " + " or ".join(f"`{kind}`" for kind in OTEL_CONTENT_TYPES),
        )
    return OtelExporter(
        url=url,
        headers=MappingProxyType(dict(headers)),
        authorization=authorization,
        content_type=str(content_type),
    )


def check_secret_variables(
    provider_keys: Mapping[str, tuple[str, ...]],
    client_tokens: Mapping[str, tuple[str, ...]],
    clients: Iterable[str],
) -> None:
    """Refuse secrets that need more Worker variables than Cloudflare allows one Worker.

    Counted exactly as `pulumi up` will pack them: `clients` are every client that can call the
    Worker, a generated token has a known length, and the gateway token, one variable whatever
    its value, is always bound (configured or created).
    """
    stand_in = "x" * GENERATED_TOKEN_LENGTH
    tokens_of = {client: client_tokens.get(client, (stand_in,)) for client in clients}
    keys = secret_values(provider_keys, None, None)
    tokens = secret_values({}, tokens_of, None)
    needed = len(keys) + len(tokens) + 1
    limits = WORKER_VARIABLE_LIMITS
    if needed > limits.per_worker:
        fail(
            "providerKeys" if len(keys) >= len(tokens) else "clientTokens",
            f"keys and client tokens that need {needed} Worker variables ({len(keys)} for "
            f"provider keys, {len(tokens)} for client tokens, 1 for the gateway token, each "
            f"at most {limits.value_bytes} bytes)",
            f"Cloudflare allows {limits.per_worker_free} variables per Worker on Workers Free "
            f"and {limits.per_worker_paid} on Paid, and aigw keeps to {limits.per_worker} so "
            "that any plan takes the stack: remove keys or clients no longer used, or split "
            "them over two stacks",
        )


def _client_token(key: str, token: object) -> None:
    """A client token: text, long enough, one word; described in errors, never shown."""
    if not isinstance(token, str):
        fail(
            key,
            f"{kind_of(token)} instead of text",
            "set the token as a string (pulumi config set --type string …)",
        )
    if len(token) < MIN_CLIENT_TOKEN_LENGTH:
        fail(
            key,
            f"a token shorter than {MIN_CLIENT_TOKEN_LENGTH} characters",
            f"use at least {MIN_CLIENT_TOKEN_LENGTH} random characters",
        )
    if BINDING_SEPARATORS.search(token):
        fail(key, "a token containing white space or a comma", "tokens are single words")


def _fits_one_variable(key: str, what: str, entry: str) -> None:
    """A key or token is never split, so its binding entry must fit one Worker variable."""
    size = entry_bytes(entry)
    limit = WORKER_VARIABLE_LIMITS.value_bytes
    if size > limit:
        fail(
            key,
            f"{what} of {size} bytes",
            f"Cloudflare stores at most {limit} bytes in one Worker variable",
        )
