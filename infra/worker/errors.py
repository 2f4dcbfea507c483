"""Every error code the Worker answers by itself, with when and what to do: the one table.

docs/worker/errors.md and the client part of docs/operate/troubleshooting.md are generated from it
(`python -m infra.cli.reference`), and tests/unit/test_error_table.py fails on a code the rendered
Worker can answer that is not here (or the other way round).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from infra.setting_forms import MAX_BODY_BYTES
from infra.worker.config import UPSTREAM_TIMEOUT_MS
from infra.worker.verdicts import (
    GATEWAY_AUTH_REFUSED,
    GATEWAY_RATE_LIMITED,
    GATEWAY_SPEND_LIMITED,
)

FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "token": "The client's token",
        "policy": "The client's policy",
        "request": "The request itself",
        "pool": "The key pool",
        "gateway": "The AI Gateway",
        "upstream": "Reaching the gateway",
    }
)
"""The kinds of error, in the order the pages show them, with their headings."""


@dataclass(frozen=True)
class WorkerError:
    """One error the Worker answers itself, as `{"error": {"message", "type", "code"}}`."""

    code: str
    statuses: tuple[int, ...]
    """The HTTP status; two when the Worker keeps the upstream's (401 or 403)."""
    type: str
    """The OpenAI error `type`, so that the official SDKs raise their usual exception."""
    family: str
    """A key of `FAMILIES`."""
    when: str
    fix: str
    """What the client, or the operator, does about it."""


_LIST_TOKENS = "`pulumi stack output --show-secrets clientTokens` lists the stack's tokens"

WORKER_ERRORS: tuple[WorkerError, ...] = (
    WorkerError(
        "invalid_client_token",
        (401,),
        "authentication_error",
        "token",
        "no client token, or one the Worker does not know (with `WWW-Authenticate: Bearer`)",
        "Client: send one of the stack's tokens as `Authorization: Bearer <token>` or in the "
        f"provider's own API key header. Operator: {_LIST_TOKENS}; a token removed from the "
        "stack stops working at the next `pulumi up`.",
    ),
    WorkerError(
        "client_token_expired",
        (401,),
        "authentication_error",
        "token",
        "the client's `expires` has passed; the message gives the date",
        "Operator: move `clients.<name>.expires` later, or remove it, and run `pulumi up`.",
    ),
    WorkerError(
        "provider_not_allowed",
        (403,),
        "permission_error",
        "policy",
        "the route's provider is not in the client's `providers`",
        "Client: call a provider it is allowed. Operator: add the provider to "
        "`clients.<name>.providers`.",
    ),
    WorkerError(
        "endpoint_not_allowed",
        (403,),
        "permission_error",
        "policy",
        "a client with a limit called an endpoint outside aigw's table (with `models`: where aigw "
        "cannot read every model a request names; without: whose use AI Gateway does not count) "
        "that no `endpoints` entry opens, one the gateway does not count (batches, realtime "
        "client secrets, ...) that no entry names, or sent Responses `background` or Workers AI "
        "`queueRequest`",
        'Operator: add `"METHOD /path-glob"` to `clients.<name>.endpoints`, if the client may '
        "call it; for an endpoint the gateway does not count, an entry that names it, as the "
        "message says (its use is then not bounded by any budget).",
    ),
    WorkerError(
        "model_not_allowed",
        (403,),
        "permission_error",
        "policy",
        "a model the request names is not in the client's `models`, or its body's models cannot "
        "all be read (not JSON, compressed, `model` twice)",
        "Client: use an allowed model, in an uncompressed JSON body. Operator: add the model, or "
        "a `*` glob, to `clients.<name>.models`.",
    ),
    WorkerError(
        "rate_limited",
        (429,),
        "rate_limit_error",
        "policy",
        "the client is over its `rateLimit`; `Retry-After` is the period; refused requests do "
        "not count",
        "Client: wait `Retry-After` seconds (the official SDKs do). Operator: raise "
        "`clients.<name>.rateLimit.limit`.",
    ),
    WorkerError(
        "rate_limit_unavailable",
        (500,),
        "upstream_error",
        "policy",
        "the client has a `rateLimit` but the deployed Worker lacks its Rate Limiting binding: "
        "it refuses rather than not limit",
        "Operator: run `pulumi up`, which binds every rate limit the stack's clients have.",
    ),
    WorkerError(
        "unknown_route",
        (404,),
        "invalid_request_error",
        "request",
        "the path is neither `/v1/…` nor `/<provider>/…` of a provider with keys",
        "Client: use `<url>/v1` as the OpenAI base URL, `<url>/<provider>` for the others. "
        "Operator: give the provider keys in `providerKeys`.",
    ),
    WorkerError(
        "invalid_path",
        (404,),
        "invalid_request_error",
        "request",
        "the path has dot segments, encoded slashes or backslashes; it is never forwarded",
        "Client: send the path as the provider documents it.",
    ),
    WorkerError(
        "method_not_allowed",
        (405,),
        "invalid_request_error",
        "request",
        "a method other than `GET`, `POST`, `DELETE` or `OPTIONS`; `Allow` lists them",
        "Client: use one of the methods in `Allow`.",
    ),
    WorkerError(
        "body_too_large",
        (413,),
        "invalid_request_error",
        "request",
        "the body is over `maxBodyBytes`, by its `Content-Length` or counted as it arrives",
        "Client: send a smaller body. Operator: raise `maxBodyBytes` (at most "
        f"{MAX_BODY_BYTES:,} bytes).",
    ),
    WorkerError(
        "no_provider_keys",
        (502,),
        "upstream_error",
        "pool",
        "the provider's `<SLUG>_API_KEYS` binding holds no key",
        "Operator: set `providerKeys.<provider>` and run `pulumi up`; with `aigw dev`, put the "
        "keys in `.dev.vars`.",
    ),
    WorkerError(
        "pool_exhausted",
        (429,),
        "rate_limit_error",
        "pool",
        "every key of the provider rests on a time its provider stated, so nothing was sent; "
        "`Retry-After` and `retry-after-ms` say when the soonest key takes a request again",
        "Client: wait `Retry-After`. Operator: `aigw keys` shows the keys; add keys, or keys of "
        "a higher tier.",
    ),
    WorkerError(
        "upstream_key_rejected",
        (401, 403),
        "upstream_error",
        "pool",
        "the provider refused the request with every key tried: revoked keys, or a request the "
        "keys may not make (a model their organization lacks); the provider's body, which quotes "
        "the key, is withheld",
        "Operator: `aigw keys` shows which keys are refused; replace them. Client: check the "
        "model and endpoint.",
    ),
    WorkerError(
        "gateway_rate_limited",
        (429,),
        "rate_limit_error",
        "gateway",
        f"AI Gateway's own rate limit refused the request (`internalCode` "
        f"`{GATEWAY_RATE_LIMITED}`); its `Retry-After` is kept and no other key is tried",
        "Client: wait `Retry-After`. Operator: raise or remove `rateLimit`.",
    ),
    WorkerError(
        "budget_exceeded",
        (429,),
        "rate_limit_error",
        "gateway",
        f"an AI Gateway spend limit refused the request (`{GATEWAY_SPEND_LIMITED}`); the message "
        "names the client and its budget",
        "Client: wait for the budget's window. Operator: raise `budget` or "
        "`clients.<name>.budget`; budgets are best effort ([why](../clients.md)).",
    ),
    WorkerError(
        "gateway_auth_failed",
        (502,),
        "upstream_error",
        "gateway",
        f"AI Gateway refused the Worker's `GATEWAY_TOKEN` (`{GATEWAY_AUTH_REFUSED}`); the token "
        "is never quoted",
        "Operator: set `gatewayToken` to a current token with AI Gateway Run on the account, "
        "or unset it so that `pulumi up` creates one, and run `pulumi up`.",
    ),
    WorkerError(
        "upstream_unreachable",
        (502,),
        "upstream_error",
        "upstream",
        "the last attempt could not connect to the gateway",
        "Client: retry later. Operator: check Cloudflare's status; with `aigw dev`, that "
        "`--upstream` answers.",
    ),
    WorkerError(
        "upstream_timeout",
        (504,),
        "upstream_error",
        "upstream",
        f"the gateway sent no response headers within {UPSTREAM_TIMEOUT_MS // 1000} seconds",
        "Client: retry, or ask for less (a smaller `max_tokens`), or stream.",
    ),
)
"""Every code the Worker answers by itself, grouped by family."""

ERRORS_BY_CODE: Mapping[str, WorkerError] = MappingProxyType(
    {error.code: error for error in WORKER_ERRORS}
)


def errors_table() -> str:
    """The Markdown table of every error, for docs/worker/errors.md."""
    lines = [
        "| status | `code` | `type` | when | what to do |",
        "|---|---|---|---|---|",
    ]
    for error in WORKER_ERRORS:
        status = " / ".join(str(status) for status in error.statuses)
        lines.append(f"| {status} | `{error.code}` | `{error.type}` | {error.when} | {error.fix} |")
    return "\n".join(lines)


def client_troubleshooting() -> str:
    """What a client sees, family by family, for docs/operate/troubleshooting.md."""
    lines: list[str] = []
    for family, title in FAMILIES.items():
        lines += [f"### {title}", ""]
        for error in (error for error in WORKER_ERRORS if error.family == family):
            status = " / ".join(str(status) for status in error.statuses)
            lines.append(f"- **`{status} {error.code}`**: {error.when}. {error.fix}")
        lines.append("")
    return "\n".join(lines).rstrip("\n")
