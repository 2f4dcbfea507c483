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
refused with 400, provider verdicts) and redacted. Every error status's body is read, whatever its
content type (only a JSON one is parsed), never a 2xx's; a body declared larger is passed through
unread, and one streaming past it is redacted as it streams."""
REDACTED = "[redacted]"
"""What a pool key or the gateway token is replaced with in an error body the Worker read."""
ESCAPE_STARTS = b"\\%&"
"""The bytes an escaped character of a secret starts with (see `escaped_character`)."""
ENCODED_LENGTH_MAX = 10
"""The most bytes `escaped_character` reads for one character (`&#x000073;`): a streamed body's
window keeps this many per character of the longest secret."""
CORS_HEADER_PREFIX = "access-control-"
_DIGITS = re.compile(r"[0-9]+")


def error_document(status: int, headers: Mapping[str, str], body: bytes) -> object | None:
    """The parsed body of an error answer that says who refused and why, else None.

    Only error statuses with a JSON content type are read, and only up to `ERROR_PEEK_BYTES`: a
    2xx is streamed through unread, and a large error body is passed on whole without a look.
    """
    if not error_body_read(status, headers) or len(body) > ERROR_PEEK_BYTES:
        return None
    if not is_json(headers.get("content-type")):
        return None
    try:
        document: object = json.loads(body)
    except ValueError:
        return None
    return document


def error_body_read(status: int, headers: Mapping[str, str]) -> bool:
    """Whether the Worker reads an answer's body: an error status whose declared length, if any,
    is within `ERROR_PEEK_BYTES`, whatever its content type (a `text/plain` or `text/html` error
    page may quote a key as well). Such a body is redacted before it reaches the client (one read
    past the bound, as it streams); only a JSON one is parsed, to tell who refused and why."""
    declared = headers.get("content-length", "")
    return status >= 400 and not (_DIGITS.fullmatch(declared) and int(declared) > ERROR_PEEK_BYTES)


def is_json(content_type: str | None) -> bool:
    """Whether a `Content-Type` is JSON (`application/json` or a `+json` type)."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def secret_forms(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """The secrets an error body is searched for, as UTF-8, each once, longest first (so the
    longest one matching at a place is the one replaced); `secret_end` finds each however it is
    written."""
    forms = {secret.encode() for secret in secrets if secret}
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


def redacted(body: bytes, forms: tuple[bytes, ...]) -> bytes:
    """`body` with each quoted secret replaced by `REDACTED`, scanning left to right and trying the
    longest secret first at each place (as the Worker does, a window at a time, on a stream)."""
    if not forms:
        return body
    starts = secret_starts(forms)
    parts: list[bytes] = []
    copied = at = 0
    while at < len(body):
        end = -1
        if body[at] in starts:
            end = next((e for form in forms if (e := secret_end(body, at, form)) != -1), -1)
        if end == -1:
            at += 1
            continue
        parts += [body[copied:at], REDACTED.encode()]
        at = copied = end
    return b"".join([*parts, body[copied:]]) if parts else body


def secret_starts(forms: tuple[bytes, ...]) -> frozenset[int]:
    """The bytes a quoted secret can start with: its first character in either case, or an
    escape (`\\`, `%`, `&`)."""
    starts = set(ESCAPE_STARTS)
    for form in forms:
        starts |= {ord(chr(form[0]).lower()), ord(chr(form[0]).upper())}
    return frozenset(starts)


def secret_end(body: bytes, at: int, secret: bytes) -> int:
    """Where `secret` ends if `body` quotes it at `at`, else -1: each character as is in either
    letter case, or escaped (`ENCODED_CHARACTER`: `\\u0073`, `\\x73`, `%73`, `&#115;`,
    `&#x73;`, or `\\` before a character that is not a letter or digit)."""
    position = at
    for character in secret:
        length = character_length(body, position, character)
        if length == 0:
            return -1
        position += length
    return position


def character_length(body: bytes, at: int, character: int) -> int:
    """How many bytes of `body` at `at` write `character` (a byte of a secret), or 0."""
    if at >= len(body):
        return 0
    if _folded(body[at]) == _folded(character):
        return 1
    if character >= 0x80:
        return 0
    code, length = escaped_character(body, at)
    return length if length and _folded(code) == _folded(character) else 0


def escaped_character(body: bytes, at: int) -> tuple[int, int]:
    """(the character an escape at `at` writes, its length), or (0, 0): `\\u0073`, `\\x73`,
    `%73`, `&#x73;`, `&#115;`, or a backslash before punctuation (`\\/`, `\\"`)."""
    first = body[at]
    after = body[at + 1] if at + 1 < len(body) else -1
    if first == 0x5C:  # backslash
        if after == 0x75:  # u
            return _number(body, at + 2, 16, 4, 4, b"", at)
        if after == 0x78:  # x
            return _number(body, at + 2, 16, 2, 2, b"", at)
        if 0x21 <= after <= 0x7E and not chr(after).isalnum():
            return after, 2
    elif first == 0x25:  # %
        return _number(body, at + 1, 16, 2, 2, b"", at)
    elif first == 0x26 and after == 0x23:  # &#
        if at + 2 < len(body) and body[at + 2] in b"xX":
            return _number(body, at + 3, 16, 1, 6, b";", at)
        return _number(body, at + 2, 10, 1, 7, b";", at)
    return 0, 0


def _number(
    body: bytes, start: int, base: int, fewest: int, most: int, end: bytes, at: int
) -> tuple[int, int]:
    """(the number of `fewest` to `most` digits in `base` from `start`, then `end`, and the length
    from `at`), or (0, 0)."""
    digits = "0123456789abcdef"[:base]
    position = start
    while position < len(body) and position - start < most:
        if chr(body[position]).lower() not in digits:
            break
        position += 1
    if position - start < fewest or body[position : position + len(end)] != end:
        return 0, 0
    return int(body[start:position], base), position + len(end) - at


def _folded(code: int) -> int:
    """An ASCII letter in lower case; any other byte as it is."""
    return code + 32 if 65 <= code <= 90 else code


def scrubbed(answer: UpstreamResponse, secrets: tuple[str, ...]) -> UpstreamResponse:
    """An upstream answer as it may reach the client: headers scrubbed, and a body the Worker read
    (`error_body_read`) with every pool key and the gateway token redacted, whatever its status."""
    headers = scrubbed_headers(answer.headers, secrets, thorough=answer.status >= 400)
    body = answer.body
    if error_body_read(answer.status, answer.headers):
        body = redacted(body, secret_forms(secrets))
        if body != answer.body and "content-length" in headers:
            headers["content-length"] = str(len(body))
    return UpstreamResponse(answer.status, headers, body)


def scrubbed_headers(
    headers: Mapping[str, str], secrets: tuple[str, ...], *, thorough: bool = False
) -> dict[str, str]:
    """An upstream's response headers without CORS headers and without any header quoting a secret
    (with `thorough`, an error answer's, however it is written: `secret_end`).

    CORS is the Worker's alone to grant (an upstream's `access-control-allow-origin: *` would
    open a listed-origins Worker to every page), and a header echoing the pool key or the
    gateway token must not reach the client.
    """
    forms = secret_forms(secrets) if thorough else ()
    return {
        name: value
        for name, value in headers.items()
        if not name.startswith(CORS_HEADER_PREFIX)
        and not any(secret in value for secret in secrets if secret)
        and not (forms and quotes_secret(value.encode(), forms))
    }


def quotes_secret(data: bytes, forms: tuple[bytes, ...]) -> bool:
    """Whether `data` quotes one of `forms` anywhere, however written (`secret_end`)."""
    starts = secret_starts(forms)
    return any(
        data[at] in starts and any(secret_end(data, at, form) != -1 for form in forms)
        for at in range(len(data))
    )
