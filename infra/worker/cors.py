"""CORS: which browser origins may read the Worker's answers, and the answer to a preflight.

`worker_template/cors.js.j2` is its twin, function for function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from infra.worker.config import Response, WorkerConfig
from infra.worker.routing import ALLOW

CORS_ALLOWED_HEADERS = (
    "accept",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "anthropic-version",
    "authorization",
    "content-type",
    "idempotency-key",
    "openai-beta",
    "x-api-key",
    "x-goog-api-client",
    "x-goog-api-key",
)
"""Request headers a browser may send, besides the `clientGatewayHeaders` (no header the Worker
drops is on it); the `x-stainless-*` family the official SDKs add (its members change between SDK
releases) is allowed by prefix when a preflight asks for them."""
CORS_ALLOWED_HEADER_PREFIX = "x-stainless-"
CORS_EXPOSED_HEADERS = (
    "cf-aig-cache-status",
    "cf-aig-log-id",
    "openai-processing-ms",
    "openai-version",
    "request-id",
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-request-id",
)
CORS_MAX_AGE = "86400"
_HEADER_NAME = re.compile(r"[a-z0-9-]+")


def cors_origin(config: WorkerConfig, origin: str | None) -> str | None:
    """The `Access-Control-Allow-Origin` for a request's `Origin`, or `None` if not allowed."""
    if origin is None:
        return None
    if "*" in config.cors_origins:
        return "*"
    # Settings accept listed origins in any case; browsers send scheme and host in lower case.
    listed = {allowed.lower() for allowed in config.cors_origins}
    return origin if origin.lower() in listed else None


def with_cors(config: WorkerConfig, origin: str | None, response: Response) -> Response:
    """`response` with the CORS headers a browser needs to read it, if its origin is allowed."""
    allowed = cors_origin(config, origin)
    if allowed is None:
        return response
    headers = dict(response.headers)
    headers["access-control-allow-origin"] = allowed
    headers["access-control-expose-headers"] = ", ".join(CORS_EXPOSED_HEADERS)
    if allowed != "*":
        headers["vary"] = ", ".join(v for v in (headers.get("vary"), "Origin") if v)
    return Response(response.status, headers, response.body)


def preflight(config: WorkerConfig, headers: Mapping[str, str]) -> Response:
    """The answer to an `OPTIONS` request: no auth, no upstream call."""
    allowed = cors_origin(config, headers.get("origin"))
    if allowed is None:
        return Response(204, {"allow": ALLOW}, b"")
    requested = [
        h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")
    ]
    stainless = [
        h
        for h in requested
        if h.startswith(CORS_ALLOWED_HEADER_PREFIX) and _HEADER_NAME.fullmatch(h)
    ]
    response_headers = {
        "allow": ALLOW,
        "access-control-allow-origin": allowed,
        "access-control-allow-methods": ALLOW,
        "access-control-allow-headers": ", ".join(
            [*CORS_ALLOWED_HEADERS, *config.client_gateway_headers, *dict.fromkeys(stainless)]
        ),
        "access-control-max-age": CORS_MAX_AGE,
    }
    if allowed != "*":
        response_headers["vary"] = "Origin"
    return Response(204, response_headers, b"")
