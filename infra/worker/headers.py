"""Forwarded headers: what of a client's headers goes upstream, the gateway controls a client may
send, and the shared gateway cache key.

`worker_template/headers.js.j2` is its twin, function for function.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from infra.providers import PROVIDERS
from infra.worker.config import WorkerConfig

CLIENT_KEY_HEADERS = tuple(
    sorted({"authorization"} | {h for p in PROVIDERS.values() for h in p.client_key_headers})
)
"""Every header a client SDK may put its key in: cleared on every route, so no client token can
reach a provider whose SDK would not have sent it there."""
STRIPPED_HEADERS = (
    "cdn-loop",
    "connection",
    "content-length",
    "cookie",
    "forwarded",
    "host",
    "keep-alive",
    "openai-organization",
    "openai-project",
    "te",
    "trailer",
    "transfer-encoding",
    "true-client-ip",
    "upgrade",
    "x-goog-fieldmask",
    "x-goog-quota-user",
    "x-goog-user-project",
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
    "x-real-ip",
)
"""Client headers never forwarded upstream: the client's address and cookies, hop-by-hop headers,
method overrides (the method checked is the method sent), and the headers that pick which
organization, project or billing project a pool key acts for. Those are the operator's: with keys
of several organizations, a client's `OpenAI-Organization` would have every key but one refused,
and the witness rule would rest them all for every client."""
STRIPPED_HEADER_PREFIXES = ("x-forwarded-", "proxy-")
GATEWAY_HEADER_PREFIX = "cf-"
"""A client header with this prefix is an AI Gateway control (`cf-aig-*`, the older `cf-cache-ttl`
and `cf-skip-cache`, and whatever Cloudflare adds next) or Cloudflare's own (`cf-connecting-ip`,
`cf-ray`...): forwarded only when `clientGatewayHeaders` lists it (an allow list, by prefix)."""
CACHE_TTL_HEADER = "cf-aig-cache-ttl"
CACHE_KEY_HEADER = "cf-aig-cache-key"
UNKEYED_HEADERS = (
    "accept-encoding",
    "baggage",
    "idempotency-key",
    "origin",
    "priority",
    "referer",
    "sentry-trace",
    "traceparent",
    "tracestate",
    "user-agent",
    "x-goog-api-client",
    "x-request-id",
)
"""Forwarded headers that never change a provider's answer (SDK telemetry, tracing, browser
context) and so stay out of the shared cache key; every other forwarded header is in it."""
UNKEYED_HEADER_PREFIXES = ("x-stainless-", "sec-", GATEWAY_HEADER_PREFIX)
_DIGITS = re.compile(r"[0-9]+")


def forwarded_headers(
    config: WorkerConfig, client: str, headers: Mapping[str, str]
) -> dict[str, str]:
    """The client's headers that go upstream: no auth, address, cookie, hop-by-hop, method
    override or account header, and of the `cf-` ones only those `clientGatewayHeaders` lists,
    as `gateway_control` words them."""
    forwarded = {}
    for name, value in headers.items():
        # Some servers read `_` as `-`: `OpenAI_Organization` is stripped like the header it names,
        # and a `cf_aig_*` header is never the control `clientGatewayHeaders` lists.
        spelled = name.replace("_", "-")
        if (
            spelled in STRIPPED_HEADERS
            or spelled in CLIENT_KEY_HEADERS
            or spelled.startswith(STRIPPED_HEADER_PREFIXES)
            or (spelled != name and spelled.startswith(GATEWAY_HEADER_PREFIX))
        ):
            continue

        kept: str | None = value
        if name.startswith(GATEWAY_HEADER_PREFIX):
            kept = gateway_control(config, client, name, value)
        if kept is not None:
            forwarded[name] = kept
    return forwarded


def gateway_control(config: WorkerConfig, client: str, name: str, value: str) -> str | None:
    """A client's `cf-` header as it goes upstream, or None when it is dropped: not listed in
    `clientGatewayHeaders`; a cache TTL capped at the gateway's (dropped while caching is off, or
    when it is not a number of seconds); a cache key scoped to the client."""
    if name not in config.client_gateway_headers:
        return None
    if name == CACHE_TTL_HEADER:
        if config.cache_ttl == 0 or not _DIGITS.fullmatch(value):
            return None
        return str(min(int(value), config.cache_ttl))
    if name == CACHE_KEY_HEADER:
        return client_cache_key(client, value)
    return value


def client_cache_key(client: str, value: str) -> str:
    """A client's own `cf-aig-cache-key`, scoped to that client.

    Forwarded as is, a client could store any answer under the key the Worker computes for
    another request (or another client's key) and so poison what other clients get from the
    cache. A client name has no `:`, and the Worker's own keys are bare hex, so none can collide.
    """
    return f"{client}:{value}"


def cache_key(
    method: str,
    upstream_path: str,
    headers: Mapping[str, str],
    body: bytes,
    client: str | None = None,
) -> str:
    """The gateway cache key: the same request shares one entry whichever key sends it, and (with
    `client`, `cacheScope: client`) only for that client.

    Shared by every client, a cache tells a client whether another sent exactly this request
    (a hit) and hands it that client's answer. A client's line comes first, and a client name
    holds no new line while a shared key's first line is a method, so the two never collide.

    It covers every forwarded header but those that never change an answer (`UNKEYED_HEADERS`):
    `anthropic-version`, `anthropic-beta`, `openai-beta` and whatever a provider reads next year
    change what comes back, and a client sending them must not decide what another client gets.
    The headers go in as JSON, so no header or body can pass for another request's.
    """
    keyed = sorted(
        [name, value]
        for name, value in headers.items()
        if name not in UNKEYED_HEADERS and not name.startswith(UNKEYED_HEADER_PREFIXES)
    )
    listed = json.dumps(keyed, separators=(",", ":"), ensure_ascii=False)
    scope = "" if client is None else f"client {client}\n"
    head = f"{scope}{method}\n{upstream_path}\n{listed}\n"
    return hashlib.sha256(head.encode() + body).hexdigest()
