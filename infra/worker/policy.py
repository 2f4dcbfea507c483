"""Client policy (DESIGN §4 "Client policy"): checked after authentication, before any upstream
call, only for the clients a policy names: expiry, providers, endpoints and models, rate limit.

`worker_template/policy.js.j2` is its twin, function for function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from infra.client_policies import ALL_CLIENTS, Budget, ClientPolicy, ClientRateLimit
from infra.providers import Provider
from infra.worker.answers import error
from infra.worker.body_models import AmbiguousJson, UnreadableBody, body_models, read_json
from infra.worker.config import Response, WorkerConfig
from infra.worker.endpoints import (
    UNREADABLE_MODEL_CHARACTERS,
    Endpoint,
    checked_name,
    client_path,
    deferred_field,
    deferred_parameter,
    glob_matches,
    missing_model,
    opened,
    table_endpoint,
    uncounted,
)
from infra.worker.routing import decoded_path

POLICY_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
"""The OpenAI error `type` of each policy refusal's status."""
IDENTITY_ENCODINGS = ("", "identity")
"""The request `Content-Encoding`s a body is read as it comes (none, or `identity`)."""
AMBIGUOUS_BODY = (
    "its body names a key twice in one object, nests deeper than aigw reads, or has a key or "
    "text it cannot read as the provider would (invalid UTF-8, a control character in a key): "
    "send it as plain JSON"
)
COUNTED = "whose use AI Gateway counts"
"""How the refusal of a client with a limit but no `models` names the endpoints it may call."""
_PRINTABLE_NAME = re.compile(r"[!-~]{1,256}")
"""A model name a refusal may quote: printable ASCII, as `models` patterns are."""


def policy_of_client(config: WorkerConfig, client: str) -> ClientPolicy | None:
    """The client's own policy, else the `"*"` one, else None (an own entry replaces `"*"`)."""
    own = config.clients.get(client)
    return own if own is not None else config.clients.get(ALL_CLIENTS)


def expiry_text(policy: ClientPolicy) -> str:
    """When the policy's tokens expire, as the refusal says it (UTC, to the second)."""
    assert policy.expires is not None
    return policy.expires.strftime("%Y-%m-%dT%H:%M:%SZ")


def budget_text(budget: Budget) -> str:
    """A budget as messages name it: `$5.00 per 86400 s`."""
    return f"${budget.limit:.2f} per {budget.window} s"


@dataclass
class FixedWindowLimiter:
    """A Workers Rate Limiting binding as the model sees it (and as `aigw dev`'s stand-in does):
    per key, at most `limit` calls succeed in a window of `period` seconds that starts with the
    key's first call after the previous window ended."""

    limit: int
    period: int
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Key to (window start in ms, successful calls in it)."""
    calls: int = 0

    def check(self, key: str, now_ms: int) -> bool:
        """`limit({key})`'s `success`: whether this call is within the key's limit."""
        self.calls += 1
        start, count = self.windows.get(key, (now_ms, 0))
        if now_ms - start >= self.period * 1000:
            start, count = now_ms, 0
        if count >= self.limit:
            return False
        self.windows[key] = (start, count + 1)
        return True


def has_limit(policy: ClientPolicy) -> bool:
    """Whether a policy limits what the client may spend or call (`budget`, `rateLimit`, `models`
    or `providers`): such a client may call only the endpoints whose use the gateway counts."""
    return any(
        value is not None
        for value in (policy.budget, policy.rate_limit, policy.models, policy.providers)
    )


def check_policy(
    config: WorkerConfig,
    client: str,
    provider: Provider,
    method: str,
    rest: str,
    body: bytes,
    now_ms: int,
    limiter: Callable[[ClientRateLimit], FixedWindowLimiter],
    encoding: str = "",
    query: str = "",
) -> Response | None:
    """The refusal of the client's policy for this request, or None when it may go upstream;
    `encoding` is the request's `Content-Encoding`, `query` its raw query string.

    In DESIGN §4's order: expiry, provider, endpoint, models, rate limit. The rate limit is
    checked last, so refused requests never count against it; the body is parsed only when
    `models` is set.
    """
    policy = policy_of_client(config, client)
    if policy is None:
        return None
    if policy.expires is not None and now_ms >= int(policy.expires.timestamp() * 1000):
        return _policy_error(
            401,
            "client_token_expired",
            f"the tokens of client {client} expired at {expiry_text(policy)}: ask the operator "
            "for a new one",
        )
    if policy.providers is not None and provider.slug not in policy.providers:
        return _policy_error(
            403,
            "provider_not_allowed",
            f"client {client} may not call {provider.slug}; its providers are "
            + ", ".join(policy.providers),
        )
    if has_limit(policy):
        path = client_path(provider.slug, decoded_path(rest))
        refusal, endpoint, path_model = check_endpoint(client, policy, provider.slug, method, path)
        if refusal is None and endpoint is not None and endpoint.deferred_fields:
            refusal = check_deferred(client, endpoint, method, body, encoding, query)
        if refusal is not None:
            return refusal
        if policy.models is not None:
            refusal = check_models(
                client, policy, provider.slug, method, endpoint, path_model, body, encoding
            )
            if refusal is not None:
                return refusal
    rate = policy.rate_limit
    if rate is not None and not limiter(rate).check(client, now_ms):
        return _policy_error(
            429,
            "rate_limited",
            f"client {client} is over its rate limit of {rate.limit} requests per "
            f"{rate.period} s; retry after {rate.period} s",
            {"retry-after": str(rate.period)},
        )
    return None


def check_endpoint(
    client: str, policy: ClientPolicy, slug: str, method: str, path: str
) -> tuple[Response | None, Endpoint | None, str | None]:
    """(the refusal, or None; the `ENDPOINTS` entry called; the model its path names) for a client
    with a limit on the decoded client `path`: it must be in `ENDPOINTS` or opened by `endpoints`
    (an uncounted endpoint by name)."""
    if any(character in path for character in UNREADABLE_MODEL_CHARACTERS):
        refusal = _policy_error(
            403,
            "endpoint_not_allowed",
            f"client {client} may not send a path that holds ? or # once decoded",
        )
        return refusal, None, None
    endpoint, path_model = table_endpoint(slug, method, path)
    if endpoint is None and not opened(policy.endpoints, method, path):
        closed = uncounted(path)
        message = (
            _endpoints_message(client, policy)
            if closed is None or not opened_but_uncounted(policy.endpoints, method, path)
            else f"client {client} may not call {method} {path}: AI Gateway does not count its "
            "use (it hands out a provider credential or runs work later), so no budget bounds "
            f"it; the operator can open it by naming {closed.name!r} in an endpoints entry"
        )
        return _policy_error(403, "endpoint_not_allowed", message), None, None
    return None, endpoint, path_model


def check_deferred(
    client: str, endpoint: Endpoint, method: str, body: bytes, encoding: str, query: str
) -> Response | None:
    """The refusal of a request that defers its work past the answer the gateway logs (Responses
    `background`, Workers AI `queueRequest`, in the body or the query), for a client with a
    limit; a body that cannot be read so is refused too."""
    if method != "POST":
        return None
    problem = None
    parameter = deferred_parameter(endpoint, query)
    if parameter is not None:
        problem = f'"{parameter}"'
    elif encoding.lower() not in IDENTITY_ENCODINGS:
        problem = "a compressed body, which aigw cannot read"
    else:
        try:
            named = deferred_field(endpoint, read_json(body))
        except AmbiguousJson:
            problem = "a body aigw cannot read as the provider would"
        except UnreadableBody:
            named = None
        if problem is None and named is not None:
            problem = f'"{named}"'
    if problem is None:
        return None
    return _policy_error(
        403,
        "endpoint_not_allowed",
        f"client {client} may not send {problem} here: with it the work may run after this "
        "request, where AI Gateway does not count it, so no budget bounds it",
    )


def opened_but_uncounted(
    endpoints: tuple[tuple[str, str], ...] | None, method: str, path: str
) -> bool:
    """Whether an `endpoints` entry would open this uncounted path but does not name it."""
    return any(
        allowed in ("*", method) and glob_matches(glob, path) for allowed, glob in endpoints or ()
    )


def check_models(
    client: str,
    policy: ClientPolicy,
    slug: str,
    method: str,
    endpoint: Endpoint | None,
    path_model: str | None,
    body: bytes,
    encoding: str = "",
) -> Response | None:
    """The refusal of a client with `models` for a request to an endpoint `check_endpoint` let
    through, or None: every model the request names must be listed."""
    assert policy.models is not None
    models = [] if path_model is None else [path_model]
    # GET carries no body upstream; POST always does, DELETE when it has one.
    if method == "POST" or (method == "DELETE" and body):
        reads = endpoint is not None and endpoint.reads_body
        if encoding.lower() not in IDENTITY_ENCODINGS:
            # A compressed body is not read here, and a provider that inflates it would read it.
            return _model_error(client, "send the body without a Content-Encoding")
        try:
            document = read_json(body)
        except AmbiguousJson:
            return _model_error(client, AMBIGUOUS_BODY)
        except UnreadableBody:
            if reads:
                return _model_error(client, "send a JSON object body that names its model")
            document = None
        problem = None
        if reads:
            if not isinstance(document, dict):
                problem = "send a JSON object body that names its model"
            else:
                assert endpoint is not None
                problem = missing_model(endpoint, document)
        if problem is not None:
            return _model_error(client, problem)
        models += [checked_name(slug, model, True) for model in body_models(document)]
    if any(c in model for model in models for c in UNREADABLE_MODEL_CHARACTERS):
        return _model_error(client, "a model name with ? or # is refused")
    refused = [m for m in models if not any(glob_matches(p, m) for p in policy.models)]
    if refused:
        quoted = sorted(m for m in refused if _PRINTABLE_NAME.fullmatch(m))
        named = f"model {json.dumps(quoted[0])}" if quoted else "a model this request names"
        return _policy_error(
            403,
            "model_not_allowed",
            f"client {client} may not use {named}; its models are " + ", ".join(policy.models),
        )
    return None


def _endpoints_message(client: str, policy: ClientPolicy) -> str:
    """Why a client with a limit may not call an endpoint, and which ones it may."""
    extra = [f"{method} {glob}" for method, glob in policy.endpoints or ()]
    known = "where aigw reads every model a request names" if policy.models else COUNTED
    return (
        f"client {client} may call only the inference endpoints {known}, and the model listings"
        + (f", and {', '.join(extra)}" if extra else "")
        + "; the operator can open others in its policy's endpoints"
    )


def _model_error(client: str, problem: str) -> Response:
    """The refusal of a request whose models cannot all be read."""
    return _policy_error(
        403,
        "model_not_allowed",
        f"client {client} may only use certain models, and aigw cannot read every model this "
        f"request names: {problem}",
    )


def _policy_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return error(status, code, message, headers, kind=POLICY_ERROR_TYPES[status])


def budget_exceeded_message(client: str, policy: ClientPolicy | None) -> str:
    """The message of the `429 budget_exceeded` answer to the gateway's spend-limit refusal
    (`2045`): it names the client, and its budget when it has one.

    The gateway does not say which rule refused (the client's or the gateway-wide one), so the
    budget is named as the client's, not as the cause.
    """
    message = f"client {client} has reached a spend limit of this gateway"
    if policy is not None and policy.budget is not None:
        message += f" (its budget is {budget_text(policy.budget)})"
    return message + "; requests are refused until the limit's window allows more spending"
