"""The Worker's entry in the model: one isolate answering one request, top to bottom.

`Isolate.handle` is the path of a request as `worker_template/worker.js.j2` takes it: preflight
and CORS, routing, authentication, the body's size, client policy, the key pool, then the
failover loop (`pool.proxy`). Each step is a call into its concern's module, beside its template
of the same name; this module is named `worker` after the template it mirrors, so the pairing
holds without an exception.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping

from infra.client_policies import ClientRateLimit, rate_limit_binding
from infra.providers import Provider
from infra.secret_bindings import joined_text
from infra.worker.answers import error
from infra.worker.auth import authenticate, client_candidates, client_tokens, split_list
from infra.worker.config import ClientRequest, Response, Send, WorkerConfig
from infra.worker.cors import preflight, with_cors
from infra.worker.endpoints import request_model
from infra.worker.policy import FixedWindowLimiter, check_policy
from infra.worker.pool import KeyPool, proxy
from infra.worker.routing import (
    PROXIED_METHODS,
    Route,
    forwarded_query,
    health,
    method_not_allowed,
    path_is_contained,
    route,
    split_target,
)

_DIGITS = re.compile(r"[0-9]+")


class Isolate:
    """One Worker isolate: its bindings and its per-isolate state (rotations and resting keys)."""

    def __init__(
        self,
        config: WorkerConfig,
        env: Mapping[str, str],
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.config = config
        self.env = env
        self.clock_ms = clock_ms
        self.offset = (
            config.rotation_offset
            if config.rotation_offset is not None
            else secrets.randbelow(2**32)
        )
        self.pools: dict[str, KeyPool] = {}
        self.rate_limiters: dict[str, FixedWindowLimiter] = {}
        """The Rate Limiting bindings by name: fakes with the binding's fixed-window behaviour."""
        self.binding_texts: dict[str, str] = {}
        """Each secret binding read so far, its numbered parts joined (see `binding_text`)."""

    def binding_text(self, name: str) -> str:
        """Secret binding `name` with its numbered parts (`NAME_2`, …) as one text, joined once
        per isolate (see infra/secret_bindings.py)."""
        text = self.binding_texts.get(name)
        if text is None:
            text = self.binding_texts[name] = joined_text(self.env, name)
        return text

    def rate_limiter(self, rate: ClientRateLimit) -> FixedWindowLimiter:
        """The Rate Limiting binding of `rate` (`rate_limit_binding`), created on first use."""
        name = rate_limit_binding(rate)
        return self.rate_limiters.setdefault(name, FixedWindowLimiter(rate.limit, rate.period))

    def pool(self, provider: Provider) -> KeyPool:
        """The provider's key pool, created on first use; rebuilt if its binding changed."""
        source = self.binding_text(provider.binding)
        pool = self.pools.get(provider.slug)
        if pool is None or pool.source != source:
            pool = KeyPool(split_list(source), self.offset, source=source)
            self.pools[provider.slug] = pool
        return pool

    def handle(self, request: ClientRequest, send: Send) -> Response:
        """Answer one client request, sending zero or more attempts upstream through `send`."""
        headers = {name.lower(): value.strip() for name, value in request.headers.items()}
        origin = headers.get("origin")
        if request.method == "OPTIONS":
            return preflight(self.config, headers)
        return with_cors(self.config, origin, self._handle(request, headers, send))

    def _handle(self, request: ClientRequest, headers: dict[str, str], send: Send) -> Response:
        """Route, authenticate and size-check a request before any attempt goes upstream."""
        path, query = split_target(request.target)
        if path == "/healthz":
            if request.method != "GET":
                return method_not_allowed(request.method)
            return health()
        matched = route(self.config, path, query)
        if matched is None:
            return error(404, "unknown_route", "no such route: use /v1/... or /<provider>/...")
        if not path_is_contained(matched.rest):
            return error(
                404,
                "invalid_path",
                "the path has dot segments, backslashes or encoded slashes; they are refused",
            )
        if request.method not in PROXIED_METHODS:
            return method_not_allowed(request.method)
        provider = matched.provider
        candidates = client_candidates(provider, headers, query)
        client = authenticate(candidates, client_tokens(self.binding_text))
        if client is None:
            return error(
                401,
                "invalid_client_token",
                "missing or unknown client token: send one of this gateway's client tokens as "
                "'Authorization: Bearer <token>' or in the provider's own API key header",
                {"www-authenticate": "Bearer"},
            )
        declared = headers.get("content-length", "")
        limit = self.config.max_body_bytes
        if (_DIGITS.fullmatch(declared) and int(declared) > limit) or len(request.body) > limit:
            return error(413, "body_too_large", f"the request body is larger than {limit} bytes")
        # Read once, for the key pool (per model where the provider's limits are) and the data
        # point the Worker writes.
        named = request_model(provider, request.method, matched.rest, request.body)
        refusal = check_policy(
            self.config,
            client,
            provider,
            request.method,
            matched.rest,
            request.body,
            self.clock_ms(),
            self.rate_limiter,
            headers.get("content-encoding", ""),
            query,
        )
        if refusal is not None:
            return refusal
        pool = self.pool(provider)
        if not pool.keys:
            return error(
                502,
                "no_provider_keys",
                f"no API keys are configured for {provider.slug} (binding {provider.binding})",
            )
        # `?key=` is cleared on every route: a client token there must not reach a provider
        # (or the gateway's logs) whichever route it was sent to; so are the other query forms
        # of headers that are stripped.
        matched = Route(provider, matched.rest, forwarded_query(matched.query))
        return proxy(
            self.config,
            self.env,
            self.clock_ms,
            request,
            headers,
            matched,
            client,
            pool,
            named,
            send,
        )
