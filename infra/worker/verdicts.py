"""Verdicts: who refused an attempt and why (the gateway itself, a refused key, a spent quota), how
long a key rests for it, and whether another key may do better.

`worker_template/verdicts.js.j2` is its twin, function for function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from datetime import time as wall_time
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from infra.client_policies import ClientPolicy
from infra.providers import Provider
from infra.worker import key_limits, rate_limit_headers
from infra.worker.answers import RATE_LIMIT_ERROR_TYPE, error
from infra.worker.body_models import UnreadableBody, read_json
from infra.worker.config import Response, UpstreamResponse
from infra.worker.key_limits import MAX_COOLDOWN_MS
from infra.worker.policy import budget_exceeded_message

FAILOVER_STATUSES = (401, 402, 403, 429)
"""Upstream statuses retried with another key, besides a model refusal (`model_refusal`) and a
5xx within `SERVER_ERROR_FAILOVER_MS` (`server_error_failover`)."""
KEY_REJECTED_STATUSES = (401, 402, 403)
"""Statuses that mean the key itself is refused (revoked, unpaid): it cools down for long."""
RATE_LIMITED_COOLDOWN_MS = 10_000
"""How long a key rests after a 429 that stated no time (no `Retry-After`, `retry-after-ms`,
`RetryInfo` or rate-limit headers at 0): a guess of the Worker's own, so the key is still tried
when every other key rests too."""
REJECTED_COOLDOWN_MS = 900_000
"""How long a key rests after a 401, 402 or 403 (once another key answered that request with a
2xx), for the request's model only when the refusal is about the model (`model_refusal`)."""
SERVER_ERROR_FAILOVER_MS = 5_000
"""A 5xx is failed over only while the request has taken less than this, all attempts together,
and only when its body is not a stream. The providers' fast 5xx (overloaded, a bad gateway,
an unreachable backend: OpenAI's 503 "Slow Down", Anthropic's 529 `overloaded_error`, AI
Gateway's 502) come well within it, before any work; a 5xx after longer may follow work the
provider bills (a generation cut off by a timeout), which another attempt would buy again.
Five seconds bound what a retried 5xx can cost to a few seconds of generation, once."""
STREAM_CONTENT_TYPE = "text/event-stream"
"""An answer with this content type has begun to stream: never failed over, whatever its status."""
MODEL_NOT_FOUND = "model_not_found"
"""OpenAI's `error.code` refusing the model, not the key: 404 "The model `gpt-5` does not exist
or you do not have access to it." or 403 "Project `proj_…` does not have access to model
`gpt-4o-mini`" (both with "type": "invalid_request_error"; seen in openai-python's users'
reports, e.g. Aider-AI/aider#1903)."""
MODEL_REFUSAL_TYPES = ("permission_error", "not_found_error")
"""Anthropic's `error.type`s that refuse the model when the message names it: 404
`not_found_error` "model: claude-sonnet-4-5" (docs.anthropic.com/en/api/errors)."""
MODEL_REFUSAL_STATUSES = ("PERMISSION_DENIED", "NOT_FOUND")
"""Google's `error.status`es that refuse the model when the message names it: 403 "You do not
have permission to access tuned model tunedModels/…", 404 "models/… is not found for API version
v1beta" (ai.google.dev/gemini-api/docs/troubleshooting)."""
HELD_WHOLE = "whole"
HELD_MODEL_REFUSED = "model-refused"
HELD_MODEL = "model"
"""What a held rest (`held_rest_until`) rests: the whole key, the key for the request's model as
one it may not use (`key_limits.refuse_model`), or the key for that model's quota (a per-day quota
per model)."""
DECLARED_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
"""Top-level body fields that declare a request's output tokens (Chat Completions, Anthropic's
Messages, Responses), read only on a 429 (`rate_limit_headers.size_refusal`)."""
KEY_INVALID_REASONS = {"google-ai-studio": "API_KEY_INVALID"}
"""Providers that refuse a bad key with 400 rather than 401, and the `reason` their error names.

Google AI Studio answers a revoked or unknown key with `400 INVALID_ARGUMENT` and an ErrorInfo
detail whose reason is `API_KEY_INVALID`: without this, one revoked key would fail its share of
requests for good instead of failing over."""
GATEWAY_ERROR_NAME = "AiGatewayError"
"""The `name` of AI Gateway's own error bodies: a refusal of the gateway, not of a key."""
GATEWAY_RATE_LIMITED = 2003
"""The `internalCode` of the gateway's own rate limit."""
GATEWAY_AUTH_REFUSED = 2009
"""The `internalCode` of the gateway refusing the Worker's `cf-aig-authorization`."""
GATEWAY_SPEND_LIMITED = 2045
"""The `internalCode` of a gateway spend limit."""
GATEWAY_RATE_LIMITED_MESSAGE = (
    "the AI Gateway's own rate limit refused this request (no provider key is at fault): retry "
    "after a while, or ask the operator to raise the gateway's rate limit"
)
GATEWAY_AUTH_FAILED_MESSAGE = (
    "the AI Gateway refused this Worker's gateway token, so no provider was asked: the operator "
    "should check that the Worker's GATEWAY_TOKEN secret is a current authentication token of "
    "the gateway"
)
INSUFFICIENT_QUOTA = "insufficient_quota"
"""OpenAI's `error.code` / `error.type` for a key whose billing is exhausted: it rests as long as
a refused key (and, like one, only once another key answered the same request)."""
QUOTA_FAILURE_TYPE = "type.googleapis.com/google.rpc.QuotaFailure"
RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
PER_DAY_QUOTA = "PerDay"
"""In a Google quota violation's `quotaId`: the quota is per day, and resets at midnight Pacific."""
QUOTA_DAY_ZONE = "America/Los_Angeles"
"""Where Google's per-day quotas reset at midnight."""
_DIGITS = re.compile(r"[0-9]+")
_DURATION = re.compile(r"([0-9]+)(?:\.([0-9]{1,9}))?s")
"""A protobuf Duration in JSON (Google's `retryDelay`): seconds with up to nine decimals."""


def gateway_refusal(document: object) -> int | None:
    """The `internalCode` of AI Gateway's own refusal (`"name": "AiGatewayError"`), else None."""
    if not isinstance(document, dict) or document.get("name") != GATEWAY_ERROR_NAME:
        return None
    code = document.get("internalCode")
    if isinstance(code, bool) or not isinstance(code, int | float):
        return None
    if isinstance(code, float) and not code.is_integer():
        return None
    return int(code)


def gateway_answer(
    code: int, answer: UpstreamResponse, client: str, policy: ClientPolicy | None
) -> Response:
    """The client's answer to AI Gateway's own refusal `code` (DESIGN §4): the Worker's words for
    those an operator or client can act on, any other passed through (they carry no key)."""
    retry_after = answer.headers.get("retry-after")
    kept = {} if retry_after is None else {"retry-after": retry_after}
    if code == GATEWAY_RATE_LIMITED:
        return error(
            429,
            "gateway_rate_limited",
            GATEWAY_RATE_LIMITED_MESSAGE,
            kept,
            kind=RATE_LIMIT_ERROR_TYPE,
        )
    if code == GATEWAY_SPEND_LIMITED:
        return error(
            429,
            "budget_exceeded",
            budget_exceeded_message(client, policy),
            kept,
            kind=RATE_LIMIT_ERROR_TYPE,
        )
    if code == GATEWAY_AUTH_REFUSED:
        return error(502, "gateway_auth_failed", GATEWAY_AUTH_FAILED_MESSAGE, kept)
    return Response(answer.status, answer.headers, answer.body)


def error_of(document: object) -> dict[str, object]:
    """The `error` object of a provider's error body (Google's streaming endpoints wrap the body
    in a list), or an empty one."""
    if isinstance(document, list) and document:
        document = document[0]
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}


def details_of(document: object) -> list[dict[str, object]]:
    """The objects of `error.details[]` (Google's structured error details)."""
    details = error_of(document).get("details")
    if not isinstance(details, list):
        return []
    return [detail for detail in details if isinstance(detail, dict)]


def key_invalid_400(slug: str, status: int, document: object) -> bool:
    """Whether an answer is the provider's 400 refusing the key itself (`KEY_INVALID_REASONS`).

    The reason is read from the structured `error.details[].reason`, never searched for in the
    text: Google echoes unknown field names of the request in its 400 messages, so a client could
    otherwise make any 400 look like a refused key.
    """
    reason = KEY_INVALID_REASONS.get(slug)
    if status != 400 or reason is None:
        return False
    return any(detail.get("reason") == reason for detail in details_of(document))


def insufficient_quota(status: int, document: object) -> bool:
    """Whether an answer is an OpenAI-style 429 for a key whose billing is exhausted."""
    error = error_of(document) if status == 429 else {}
    return INSUFFICIENT_QUOTA in (error.get("code"), error.get("type"))


def quota_ids(document: object) -> list[object]:
    """The `quotaId` of every violation in a Google error's `QuotaFailure` details."""
    ids = []
    for detail in details_of(document):
        violations = detail.get("violations")
        if detail.get("@type") == QUOTA_FAILURE_TYPE and isinstance(violations, list):
            ids += [v.get("quotaId") if isinstance(v, dict) else None for v in violations]
    return ids


def per_day_quota(status: int, document: object) -> bool:
    """Whether an answer is Google's 429 for a quota that is per day (`quotaId` with `PerDay`)."""
    if status != 429:
        return False
    return any(isinstance(quota, str) and PER_DAY_QUOTA in quota for quota in quota_ids(document))


def whole_key_quota(provider: Provider, status: int, document: object) -> bool:
    """Whether an answer is a 429 of a provider that names its quotas (Google's), for a quota
    that is not per model (`key_limits.per_model_quota`): the whole key rests, not only for the
    request's model."""
    return (
        status == 429
        and provider.slug in key_limits.QUOTA_BODY_PROVIDERS
        and not key_limits.per_model_quota(quota_ids(document))
    )


def model_refusal(provider: Provider, status: int, document: object, model: str | None) -> bool:
    """Whether an answer refuses the key the request's model, not the key itself: OpenAI's
    `model_not_found` (`MODEL_NOT_FOUND`), Anthropic's `MODEL_REFUSAL_TYPES` or Google's
    `MODEL_REFUSAL_STATUSES` whose message names the model."""
    if model is None or status not in (403, 404):
        return False
    error = error_of(document)
    message = error.get("message")
    names = isinstance(message, str) and model in message
    if provider.slug == "anthropic":
        return error.get("type") in MODEL_REFUSAL_TYPES and names
    if provider.slug in key_limits.QUOTA_BODY_PROVIDERS:
        return error.get("status") in MODEL_REFUSAL_STATUSES and names
    return error.get("code") == MODEL_NOT_FOUND


def declared_tokens(body: bytes) -> int | None:
    """The output tokens a request declares (`DECLARED_TOKEN_FIELDS`), else None."""
    try:
        document = read_json(body)
    except UnreadableBody:
        return None
    if not isinstance(document, dict):
        return None
    for name in DECLARED_TOKEN_FIELDS:
        value = document.get(name)
        # read_json reads numbers as doubles, as JSON.parse does.
        if isinstance(value, float) and value.is_integer() and value > 0:
            return int(value)
    return None


def retry_delay_ms(status: int, document: object) -> int | None:
    """Google's `RetryInfo.retryDelay` of a 429 (`"37s"`, `"1.5s"`) in milliseconds, rounded up
    and capped like a `Retry-After`; None if there is none."""
    if status != 429:
        return None
    for detail in details_of(document):
        delay = detail.get("retryDelay")
        if detail.get("@type") != RETRY_INFO_TYPE or not isinstance(delay, str):
            continue
        match = _DURATION.fullmatch(delay)
        if match is None:
            continue
        nanos = int((match.group(2) or "").ljust(9, "0"))
        return min(int(match.group(1)) * 1000 + (nanos + 999_999) // 1_000_000, MAX_COOLDOWN_MS)
    return None


def held_rest_until(
    status: int, document: object, now_ms: int, refuses_model: bool = False
) -> int | None:
    """Until when an answer condemns its key for long, else None: a refusal (401/402/403, or a
    400 counted as one, or a refusal of the request's model), billing exhausted, or a per-day
    quota spent.

    Such a rest is applied only once another key served the same request with a 2xx (a 429 or a
    5xx proves nothing): when no key does, the request (a bogus OpenAI-Organization, a model no
    key may use, a model with a tiny daily quota) is at fault rather than the keys, and resting
    them all would let any client retire the whole pool.
    """
    if status in KEY_REJECTED_STATUSES or refuses_model or insufficient_quota(status, document):
        return now_ms + REJECTED_COOLDOWN_MS
    if per_day_quota(status, document):
        return next_quota_day_ms(now_ms)
    return None


def held_scope(provider: Provider, status: int, document: object, refuses_model: bool) -> str:
    """What a held rest rests (`HELD_WHOLE`, `HELD_MODEL_REFUSED`, `HELD_MODEL`)."""
    if refuses_model:
        return HELD_MODEL_REFUSED
    if per_day_quota(status, document) and not whole_key_quota(provider, status, document):
        return HELD_MODEL
    return HELD_WHOLE


def next_quota_day_ms(now_ms: int) -> int:
    """The next midnight in `QUOTA_DAY_ZONE` after `now_ms`, when Google's per-day quotas reset."""
    zone = ZoneInfo(QUOTA_DAY_ZONE)
    today = datetime.fromtimestamp(now_ms // 1000, zone).date()
    midnight = datetime.combine(today + timedelta(days=1), wall_time(0), tzinfo=zone)
    return int(midnight.timestamp()) * 1000


def retry_after_ms(value: str | None, now_ms: int) -> int | None:
    """A `Retry-After` (delay seconds or HTTP-date) as milliseconds from now; `None` if unusable."""
    if value is None:
        return None
    value = value.strip()
    if _DIGITS.fullmatch(value):
        return min(int(value) * 1000, MAX_COOLDOWN_MS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    delay = int(when.timestamp() * 1000) - now_ms
    return min(max(delay, 0), MAX_COOLDOWN_MS)


def stated_delay_ms(
    headers: Mapping[str, str], now_ms: int, retry_delay: int | None = None
) -> int | None:
    """How long a 429 says to wait: Google's `retryDelay`, else `retry-after-ms`, else
    `Retry-After` (the official SDKs' order); None when it states nothing usable."""
    if retry_delay is not None:
        return retry_delay
    delay = rate_limit_headers.retry_after_ms_value(
        headers.get(rate_limit_headers.RETRY_AFTER_MS_HEADER)
    )
    return delay if delay is not None else retry_after_ms(headers.get("retry-after"), now_ms)


def cooldown_ms(
    status: int, headers: Mapping[str, str], now_ms: int, retry_delay: int | None = None
) -> int:
    """How long a key rests after an answer: long when refused, on 429 as the provider says
    (`stated_delay_ms`) or a short default, else not at all."""
    if status in KEY_REJECTED_STATUSES:
        return REJECTED_COOLDOWN_MS
    if status == 429:
        delay = stated_delay_ms(headers, now_ms, retry_delay)
        return RATE_LIMITED_COOLDOWN_MS if delay is None else delay
    return 0


def server_error_failover(status: int, headers: Mapping[str, str], elapsed_ms: float) -> bool:
    """Whether a 5xx may go to another key: while the request has taken less than
    `SERVER_ERROR_FAILOVER_MS` and the answer is not a stream."""
    if not 500 <= status <= 599 or elapsed_ms >= SERVER_ERROR_FAILOVER_MS:
        return False
    return not headers.get("content-type", "").lower().startswith(STREAM_CONTENT_TYPE)
