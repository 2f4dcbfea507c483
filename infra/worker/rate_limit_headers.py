"""The providers' rate-limit headers, read on every answer: counts, durations, timestamps,
`retry-after-ms`, what a key has left by them (`observe`), and whether a 429 is about the
request's size rather than the key's use.

`worker_template/rate_limit_headers.js.j2` implements the same functions, and
`tests/vectors/key_limits.json` runs against both; what a key's state does with what is read here
is `key_limits`.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping, Sequence

from infra.providers import PROVIDERS
from infra.worker.key_limits import MAX_COOLDOWN_MS, KeyState

OPENAI_STYLE = "openai"
"""OpenAI's rate-limit headers: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, the reset a
Go duration (`1s`, `6m0s`, `1m30.5s`, `120ms`) until the limit is whole again."""
ANTHROPIC_STYLE = "anthropic"
"""Anthropic's: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,
reset}`, the reset an RFC 3339 time when the limit is fully replenished."""
RATE_LIMIT_HEADERS: dict[str, dict[str, list[list[str]]]] = {
    OPENAI_STYLE: {
        "requests": [
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ]
        ],
        "tokens": [
            ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"]
        ],
    },
    ANTHROPIC_STYLE: {
        "requests": [
            [
                "anthropic-ratelimit-requests-limit",
                "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-requests-reset",
            ]
        ],
        "tokens": [
            [
                f"anthropic-ratelimit-{kind}-limit",
                f"anthropic-ratelimit-{kind}-remaining",
                f"anthropic-ratelimit-{kind}-reset",
            ]
            for kind in ("tokens", "input-tokens", "output-tokens")
        ],
    },
}
"""Each style's headers as [limit, remaining, reset] per limit; of several token limits, the one
with the least left counts."""
NO_RATE_LIMIT_HEADERS = ("google-ai-studio",)
"""Providers that send no such headers (Google states its limits in the body of a 429 only)."""
RATE_LIMIT_STYLES = {
    slug: ANTHROPIC_STYLE if slug == "anthropic" else OPENAI_STYLE
    for slug in PROVIDERS
    if slug not in NO_RATE_LIMIT_HEADERS
}
"""The header style each provider's answers are read with. OpenAI's names are Groq's too; on
providers that use other names (or other formats) nothing matches, and nothing is learnt."""
CACHE_STATUS_HEADER = "cf-aig-cache-status"
CACHE_HIT = "HIT"
"""An answer AI Gateway served from its cache carries the headers of the answer it stored: stale
counts, never read."""
RETRY_AFTER_MS_HEADER = "retry-after-ms"
"""OpenAI's `Retry-After` in milliseconds, which the official SDKs honour before `Retry-After`."""

REQUEST_TOO_LARGE = "^Request too large for .*Requested [0-9]+"
"""OpenAI's 429 for one request over the key's whole tokens-per-minute limit ("Request too large for
gpt-4o in organization … on tokens per min (TPM): Limit 30000, Requested 32042. …"): every key of
the tier would refuse it and none is at fault, so it goes to the client as it is, with no failover
and no rest. Its message starts so; a rate limit's starts "Rate limit reached for", and the model
name a client chooses comes after either."""
_REQUEST_TOO_LARGE = re.compile(REQUEST_TOO_LARGE)

COUNT = "[0-9]{1,15}"
MILLISECONDS = "[0-9]{1,15}(?:\\.[0-9]{1,9})?"
GO_DURATION_PART = "([0-9]{1,15}(?:\\.[0-9]{1,9})?)(h|ms|m|s|us|ns)"
"""One number and unit of a Go duration; a duration is one or more of them."""
UNIT_MS = {"h": 3_600_000.0, "m": 60_000.0, "s": 1_000.0, "ms": 1.0, "us": 0.001, "ns": 0.000001}
RFC3339 = (
    "([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\\.[0-9]{1,9})?"
    "(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
"""The patterns of the header values read, whole (the Worker anchors them with ^ and $)."""
_COUNT = re.compile(COUNT)
_MILLISECONDS = re.compile(MILLISECONDS)
_GO_DURATION = re.compile(f"(?:{GO_DURATION_PART})+")
_GO_DURATION_PART = re.compile(GO_DURATION_PART)
_RFC3339 = re.compile(RFC3339)


def parse_count(value: str | None) -> int | None:
    """A count header (`limit`, `remaining`): a non-negative integer, else None."""
    value = (value or "").strip()
    return int(value) if _COUNT.fullmatch(value) else None


def parse_duration_ms(value: str | None) -> float | None:
    """A Go duration as OpenAI's reset headers write it (`1s`, `6m0s`, `1m30.5s`, `120ms`) in
    milliseconds, else None (a bare number has no unit, and is not read)."""
    value = (value or "").strip()
    if not _GO_DURATION.fullmatch(value):
        return None
    total = 0.0
    for number, unit in _GO_DURATION_PART.findall(value):
        total += float(number) * UNIT_MS[unit]
    return total


def parse_timestamp_ms(value: str | None) -> int | None:
    """An RFC 3339 time as Anthropic's reset headers write it, in ms since the epoch, else None."""
    match = _RFC3339.fullmatch((value or "").strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(n)) for n in range(1, 7))
    if not (
        year >= 1970
        and 1 <= month <= 12
        and 1 <= day <= 31
        and hour <= 23
        and minute <= 59
        and second <= 60
    ):
        return None
    fraction = match.group(7)
    millis = int((fraction[1:] + "00")[:3]) if fraction else 0
    offset = 0
    if match.group(8) is None:
        offset_hours, offset_minutes = int(match.group(10)), int(match.group(11))
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset = (offset_hours * 60 + offset_minutes) * 60_000
        offset = offset if match.group(9) == "+" else -offset
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds * 1000 + millis - offset


def retry_after_ms_value(value: str | None) -> int | None:
    """A `retry-after-ms` header in whole milliseconds (rounded up, capped), else None."""
    value = (value or "").strip()
    if not _MILLISECONDS.fullmatch(value):
        return None
    return min(math.ceil(float(value)), MAX_COOLDOWN_MS)


def observe(
    state: KeyState, style: str | None, headers: Mapping[str, str], now: float, mark: int
) -> bool:
    """Read the provider's rate-limit headers of an answer (any status), if it sent any.

    Bad or absent values are ignored, one limit at a time. An answer to a request sent before the
    one whose answer was read last says less than that one, and is not read; nor is an answer AI
    Gateway served from its cache. Returns whether anything was read.
    """
    family = RATE_LIMIT_HEADERS.get(style or "")
    if family is None or mark < state.counted:
        return False
    requests = _allowance(headers, family["requests"][0], style, now)
    tokens = None
    for names in family["tokens"]:
        candidate = _allowance(headers, names, style, now)
        if candidate is not None and (
            tokens is None or candidate[1] * tokens[0] < tokens[1] * candidate[0]
        ):
            tokens = candidate
    if requests is None and tokens is None:
        return False
    if headers.get(CACHE_STATUS_HEADER) == CACHE_HIT:
        return False
    state.counted = mark + 1
    if requests is not None:
        limit, left, rate = requests
        same = limit == state.requests_limit
        state.requests_limit, state.requests_left, state.requests_at = limit, left, now
        state.requests_rate = rate if rate is not None else state.requests_rate if same else 0
    if tokens is not None:
        limit, left, rate = tokens
        same = limit == state.tokens_limit
        state.tokens_limit, state.tokens_left, state.tokens_at = limit, left, now
        state.tokens_rate = rate if rate is not None else state.tokens_rate if same else 0
    return True


def _allowance(
    headers: Mapping[str, str], names: Sequence[str], style: str | None, now: float
) -> tuple[int, float, float | None] | None:
    """(limit, left, refill per ms or None) from one limit's headers, else None.

    Both styles' reset is when the limit is whole again, not when the next request is allowed:
    what is missing refills over it, so the next request comes after reset / (limit - remaining).
    """
    remaining = parse_count(headers.get(names[1]))
    limit = parse_count(headers.get(names[0]))
    if remaining is None or limit is None or limit == 0:
        return None
    left = float(min(remaining, limit))
    reset_text = headers.get(names[2])
    if style == ANTHROPIC_STYLE:
        when = parse_timestamp_ms(reset_text)
        reset = None if when is None else max(when - now, 0.0)
    else:
        reset = parse_duration_ms(reset_text)
    if reset is None or left >= limit:
        return limit, left, None
    if reset <= 0:
        # Whole again already.
        return limit, float(limit), None
    return limit, left, (limit - left) / reset


def request_too_large(status: int, error: Mapping[str, object]) -> bool:
    """Whether an answer is OpenAI's 429 for a request over the key's whole tokens-per-minute
    limit (`REQUEST_TOO_LARGE`): the request's own fault, not the key's."""
    message = error.get("message")
    return status == 429 and isinstance(message, str) and bool(_REQUEST_TOO_LARGE.match(message))


TOO_LARGE = "too-large"
"""A 429 for a request the key would refuse however long it waited: to the client as it came,
no failover, no rest."""
TOO_LARGE_NOW = "too-large-now"
"""A 429 for a request larger than what the key has left, while smaller ones fit: another key
is tried, and this one rests for nothing."""


def size_refusal(
    style: str | None, headers: Mapping[str, str], now: float, declared: int | None
) -> str | None:
    """Whether a 429 is about the request's size rather than the key's use, by its own rate-limit
    headers and the output tokens the request declares (`max_tokens`, which Anthropic counts
    against its output limit when the request starts): `TOO_LARGE` when the request declares
    more than a token limit's whole size, or when every limit the 429 states is whole (nothing
    was spent, so nothing is to wait for); `TOO_LARGE_NOW` when it states room for one more
    request and tokens left, but fewer than the request declares; else None (a rate limit).

    Anthropic's such 429 reads "This request would exceed the rate limit for your organization
    (…) of 8,000 output tokens per minute. … Please reduce the prompt length or the maximum
    tokens requested, or try again later." while its headers show the output tokens whole.
    """
    family = RATE_LIMIT_HEADERS.get(style or "")
    if family is None:
        return None
    limits = [_allowance(headers, names, style, now) for names in family["tokens"]]
    tokens = [limit for limit in limits if limit is not None]
    requests = _allowance(headers, family["requests"][0], style, now)
    stated = tokens + ([] if requests is None else [requests])
    if not stated:
        return None
    if declared is not None and any(limit < declared for limit, _, _ in tokens):
        return TOO_LARGE
    if all(left >= limit for limit, left, _ in stated):
        return TOO_LARGE
    room = requests is None or requests[1] >= 1
    if declared is not None and tokens and room:
        least = min(left for _, left, _ in tokens)
        if 1 <= least < declared:
            return TOO_LARGE_NOW
    return None
