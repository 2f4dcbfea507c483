"""The Worker's own answers: OpenAI-style errors, the timeout, the answer after the last attempt.

`worker_template/answers.js.j2` is its twin, function for function.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from infra.providers import Provider
from infra.worker.config import Response, UpstreamResponse

ERROR_TYPES = {
    401: "authentication_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
}
"""The OpenAI error `type` of the Worker's own errors by status; others are upstream errors."""
UPSTREAM_ERROR_TYPE = "upstream_error"
RATE_LIMIT_ERROR_TYPE = "rate_limit_error"
"""The error `type` of the 429s the Worker words itself."""


def error(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    kind: str | None = None,
) -> Response:
    """An OpenAI-style error of the Worker's own; `kind` overrides the type the status implies."""
    kind = kind or ERROR_TYPES.get(status, UPSTREAM_ERROR_TYPE)
    body = {"error": {"message": message, "type": kind, "code": code}}
    return Response(
        status,
        {"content-type": "application/json", **(headers or {})},
        json.dumps(body, separators=(",", ":")).encode(),
    )


def upstream_timeout() -> Response:
    return error(504, "upstream_timeout", "the gateway did not answer in time")


def final_answer(answer: UpstreamResponse | None, provider: Provider) -> Response:
    """The answer after the last attempt failed: its status, but never a key refusal's body."""
    if answer is None:
        return error(502, "upstream_unreachable", "the gateway could not be reached")
    if answer.status in (401, 403):
        retry_after = answer.headers.get("retry-after")
        kept = {} if retry_after is None else {"retry-after": retry_after}
        return error(
            answer.status,
            "upstream_key_rejected",
            f"{provider.slug} refused this request with every API key tried: the keys may be "
            "revoked (the operator should check the key pool), or the request itself is not "
            "allowed (a model the keys' organization may not use, say)",
            kept,
            kind=UPSTREAM_ERROR_TYPE,
        )
    return Response(answer.status, answer.headers, answer.body)
