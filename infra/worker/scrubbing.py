"""Scrubbing: no pool key or gateway token reaches a client, in an answer's headers or in an error
body the Worker read, and no upstream CORS header either.

`worker_template/scrubbing.js.j2` is its twin: it reads an error body as it streams (`peekError`),
where the model has the whole body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from infra.worker.config import UpstreamResponse

ERROR_PEEK_BYTES = 8_192
"""The largest error body read to tell who answered and why (AI Gateway's own refusals, a key
refused with 400, provider verdicts). Only error statuses with a JSON content type are read, never
a 2xx; a larger body (declared or streamed) is passed through unread."""
REDACTED = "[redacted]"
"""What a pool key or the gateway token is replaced with in an error body the Worker read."""
CORS_HEADER_PREFIX = "access-control-"
_DIGITS = re.compile(r"[0-9]+")


def error_document(status: int, headers: Mapping[str, str], body: bytes) -> object | None:
    """The parsed body of an error answer that says who refused and why, else None.

    Only error statuses with a JSON content type are read, and only up to `ERROR_PEEK_BYTES`: a
    2xx is streamed through unread, and a large error body is passed on whole without a look.
    """
    if not error_body_read(status, headers) or len(body) > ERROR_PEEK_BYTES:
        return None
    try:
        document: object = json.loads(body)
    except ValueError:
        return None
    return document


def error_body_read(status: int, headers: Mapping[str, str]) -> bool:
    """Whether the Worker reads an answer's body (to tell who refused and why): an error status
    with a JSON content type whose declared length, if any, is within `ERROR_PEEK_BYTES`. Such a
    body is redacted before it reaches the client (one read past the bound, as it streams)."""
    declared = headers.get("content-length", "")
    return (
        status >= 400
        and is_json(headers.get("content-type"))
        and not (_DIGITS.fullmatch(declared) and int(declared) > ERROR_PEEK_BYTES)
    )


def is_json(content_type: str | None) -> bool:
    """Whether a `Content-Type` is JSON (`application/json` or a `+json` type)."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def secret_forms(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """Each secret as an error body may quote it: as is and JSON-escaped (`/` also as `\\/`),
    longest first, so the longest one matching at a place is the one replaced."""
    forms: set[bytes] = set()
    for secret in secrets:
        if secret:
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
            forms |= {form.encode() for form in (secret, escaped, escaped.replace("/", "\\/"))}
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


def redacted(body: bytes, forms: tuple[bytes, ...]) -> bytes:
    """`body` with each quoted secret replaced by `REDACTED`, scanning left to right and trying the
    longest form first at each place (as the Worker does, a window at a time, on a stream)."""
    if not forms:
        return body
    pattern = re.compile(b"|".join(re.escape(form) for form in forms))
    return pattern.sub(REDACTED.encode(), body)


def scrubbed(answer: UpstreamResponse, secrets: tuple[str, ...]) -> UpstreamResponse:
    """An upstream answer as it may reach the client: headers scrubbed, and a body the Worker read
    (`error_body_read`) with every pool key and the gateway token redacted, whatever its status."""
    headers = scrubbed_headers(answer.headers, secrets)
    body = answer.body
    if error_body_read(answer.status, answer.headers):
        body = redacted(body, secret_forms(secrets))
        if body != answer.body and "content-length" in headers:
            headers["content-length"] = str(len(body))
    return UpstreamResponse(answer.status, headers, body)


def scrubbed_headers(headers: Mapping[str, str], secrets: tuple[str, ...]) -> dict[str, str]:
    """An upstream's response headers without CORS headers and without any header quoting a secret.

    CORS is the Worker's alone to grant (an upstream's `access-control-allow-origin: *` would
    open a listed-origins Worker to every page), and a header echoing the pool key or the
    gateway token must not reach the client.
    """
    return {
        name: value
        for name, value in headers.items()
        if not name.startswith(CORS_HEADER_PREFIX)
        and not any(secret in value for secret in secrets if secret)
    }
