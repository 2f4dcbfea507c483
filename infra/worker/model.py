"""A pure Python reference model of every decision the Worker makes (DESIGN §4).

`worker_template/worker.js.j2` implements the same decisions in JavaScript; the conformance cases in
`tests/vectors/` run against both, so a case that passes here and fails in workerd is a bug in one.
The constants below are rendered into the Worker from here, so both read one source of truth.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as wall_time
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from infra.providers import BINDING_SEPARATORS, CLIENT_TOKENS, GATEWAY_TOKEN, PROVIDERS, Provider
from infra.secret_bindings import joined_text
from infra.settings import (
    ALL_CLIENTS,
    DEFAULT_CLIENT_GATEWAY_HEADERS,
    Budget,
    ClientPolicy,
    ClientRateLimit,
    Settings,
    rate_limit_binding,
)
from infra.worker import key_limits
from infra.worker.endpoints import (
    UNREADABLE_MODEL_CHARACTERS,
    AmbiguousJson,
    Endpoint,
    UnreadableBody,
    body_models,
    checked_name,
    client_path,
    glob_matches,
    missing_model,
    opened,
    read_json,
    table_endpoint,
    uncounted,
)
from infra.worker.key_limits import MAX_COOLDOWN_MS, KeyState

PROXIED_METHODS = ("GET", "POST", "DELETE")
ALLOW = "GET, POST, DELETE, OPTIONS"
"""The `Allow` header of a 405, and the methods a preflight allows."""

UPSTREAM_TIMEOUT_MS = 300_000
"""How long an upstream gets to answer with headers. Long on purpose: a non-streaming completion
sends its headers only when the whole answer is ready, which can take minutes."""
FAILOVER_STATUSES = (401, 402, 403, 429)
"""Upstream statuses retried with another key, besides every 5xx."""
KEY_REJECTED_STATUSES = (401, 402, 403)
"""Statuses that mean the key itself is refused (revoked, unpaid): it cools down for long."""
RATE_LIMITED_COOLDOWN_MS = 10_000
"""How long a key rests after a 429 that stated no time (no `Retry-After`, `retry-after-ms`,
`RetryInfo` or rate-limit headers at 0): a guess of the Worker's own, so the key is still tried
when every other key rests too."""
REJECTED_COOLDOWN_MS = 900_000
"""How long a key rests after a 401, 402 or 403 (once another key answered that request)."""
KEY_INVALID_REASONS = {"google-ai-studio": "API_KEY_INVALID"}
"""Providers that refuse a bad key with 400 rather than 401, and the `reason` their error names.

Google AI Studio answers a revoked or unknown key with `400 INVALID_ARGUMENT` and an ErrorInfo
detail whose reason is `API_KEY_INVALID`: without this, one revoked key would fail its share of
requests for good instead of failing over."""
ERROR_PEEK_BYTES = 8_192
"""The largest error body read to tell who answered and why (AI Gateway's own refusals, a key
refused with 400, provider verdicts). Only error statuses with a JSON content type are read, never
a 2xx; a larger body (declared or streamed) is passed through unread."""
GATEWAY_ERROR_NAME = "AiGatewayError"
"""The `name` of AI Gateway's own error bodies: a refusal of the gateway, not of a key."""
GATEWAY_RATE_LIMITED = 2003
"""The `internalCode` of the gateway's own rate limit."""
GATEWAY_AUTH_REFUSED = 2009
"""The `internalCode` of the gateway refusing the Worker's `cf-aig-authorization`."""
GATEWAY_SPEND_LIMITED = 2045
"""The `internalCode` of a gateway spend limit."""
RATE_LIMIT_ERROR_TYPE = "rate_limit_error"
"""The error `type` of the 429s the Worker words itself."""
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
STRIPPED_QUERY_PARAMETERS = (
    "$.xgafv",
    "$apiformat",
    "$callback",
    "$ct",
    "$fields",
    "$httpmethod",
    "$key",
    "$quotauser",
    "$userip",
    "$userproject",
    "access_token",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "quotauser",
    "userip",
    "userproject",
)
"""Query parameters (decoded, in any letter case) never forwarded: Google's system parameters
(cloud.google.com/apis/docs/system-parameters) that do what a stripped header does or a client
token's place (`key`): the billing or quota project and user, a method or content-type override
(`$httpMethod`, `$ct`: the body checked would not be the body read), and the forms that change the
error body the Worker reads (`$.xgafv`, a JSONP `callback`, a `fields` mask)."""
ALT_PARAMETERS = ("alt", "$alt")
KEPT_ALT_VALUES = ("sse", "json")
"""`alt` is kept for `sse` (streaming) and `json` (the default), dropped for `proto` and `media`,
whose binary bodies the Worker cannot read."""
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
REDACTED = "[redacted]"
"""What a pool key or the gateway token is replaced with in an error body the Worker read."""
ESCAPE_STARTS = b"\\%&"
"""The bytes an escaped character of a secret starts with (see `escaped_character`)."""
ENCODED_LENGTH_MAX = 10
"""The most bytes `escaped_character` reads for one character (`&#x000073;`): a streamed body's
window keeps this many per character of the longest secret."""

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
CORS_HEADER_PREFIX = "access-control-"
ERROR_TYPES = {
    401: "authentication_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
}
"""The OpenAI error `type` of the Worker's own errors by status; others are upstream errors."""
UPSTREAM_ERROR_TYPE = "upstream_error"

_BEARER = re.compile(r"bearer +([^ \t]+)", re.IGNORECASE)
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c)", re.IGNORECASE)
_PERCENT = re.compile(r"%([0-9a-fA-F]{2})")
_HEADER_NAME = re.compile(r"[a-z0-9-]+")
_DIGITS = re.compile(r"[0-9]+")
_DURATION = re.compile(r"([0-9]+)(?:\.([0-9]{1,9}))?s")
"""A protobuf Duration in JSON (Google's `retryDelay`): seconds with up to nine decimals."""
_DECODE_ROUNDS = 3


@dataclass(frozen=True)
class WorkerConfig:
    """Everything non-secret the Worker is rendered with."""

    gateway_url: str
    providers: tuple[Provider, ...]
    cors_origins: tuple[str, ...]
    max_attempts: int
    max_body_bytes: int
    cache_ttl: int
    """The gateway's cache TTL in seconds; 0 is caching off."""
    upstream_timeout_ms: int = UPSTREAM_TIMEOUT_MS
    rotation_offset: int | None = None
    """Where every key rotation starts; `None` (always, in production) means a random offset."""
    clients: Mapping[str, ClientPolicy] = field(default_factory=lambda: MappingProxyType({}))
    """Client policies by name, `"*"` for every client without its own (DESIGN §4)."""
    client_gateway_headers: tuple[str, ...] = DEFAULT_CLIENT_GATEWAY_HEADERS
    """The `cf-aig-*` headers a client may send (`clientGatewayHeaders`)."""
    cache_scope: str = "client"
    """`cacheScope`: `client` puts the client's name in the Worker's cache key, `shared` not."""

    @property
    def cache(self) -> bool:
        """Gateway caching is on (`cacheTtl` > 0): the Worker sets a shared cache key."""
        return self.cache_ttl > 0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        gateway_url: str | None = None,
        upstream_timeout_ms: int = UPSTREAM_TIMEOUT_MS,
        rotation_offset: int | None = None,
    ) -> WorkerConfig:
        """The Worker's configuration for `settings`, optionally aimed at another gateway URL."""
        return cls(
            gateway_url=(gateway_url or settings.gateway_url).rstrip("/"),
            providers=tuple(PROVIDERS[slug] for slug in settings.providers),
            cors_origins=settings.cors_origins,
            max_attempts=settings.max_attempts,
            max_body_bytes=settings.max_body_bytes,
            cache_ttl=settings.cache_ttl,
            upstream_timeout_ms=upstream_timeout_ms,
            rotation_offset=rotation_offset,
            clients=settings.clients,
            client_gateway_headers=settings.client_gateway_headers,
            cache_scope=settings.cache_scope,
        )

    def provider(self, slug: str) -> Provider | None:
        """The configured provider with path segment `slug`, if any."""
        return next((p for p in self.providers if p.slug == slug), None)


@dataclass(frozen=True)
class ClientRequest:
    """A request as the Worker receives it; `target` is the raw path and query, as sent."""

    method: str
    target: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class UpstreamRequest:
    """One attempt sent to the gateway."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None


@dataclass(frozen=True)
class UpstreamResponse:
    """What the gateway answered (the body is streamed through untouched in the Worker)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


UpstreamFailure = Literal["network-error", "timeout"]
Send = Callable[[UpstreamRequest], UpstreamResponse | UpstreamFailure]


@dataclass(frozen=True)
class Response:
    """What the client gets."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Route:
    """A request mapped onto a provider: the path below the gateway, and the kept query string."""

    provider: Provider
    rest: str
    query: str

    def upstream_path(self) -> str:
        """`/<slug><rest>[?query]`, appended to the gateway URL."""
        return f"/{self.provider.slug}{self.rest}" + (f"?{self.query}" if self.query else "")


def split_list(value: str | None) -> tuple[str, ...]:
    """A secret binding's entries: separated by commas, white space or new lines (DESIGN §3)."""
    entries = [entry for entry in BINDING_SEPARATORS.split(value or "") if entry]
    return tuple(dict.fromkeys(entries))


def parse_client_tokens(value: str | None) -> list[tuple[str, str]]:
    """`CLIENT_TOKENS` as (name, token) pairs; a name appears once per token (a client rotating
    holds two), and an entry without both a name and a token is ignored."""
    tokens: list[tuple[str, str]] = []
    for entry in split_list(value):
        name, colon, token = entry.partition(":")
        if name and colon and token:
            tokens.append((name, token))
    return tokens


def key_id(key: str) -> str:
    """A key's public id: the first 8 hex digits of its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def percent_decode(text: str) -> str:
    """Decode `%XX` escapes byte by byte (each to one character); anything else is kept."""
    return _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)


def path_is_contained(rest: str) -> bool:
    """Whether a route's remainder stays below `<gateway>/<slug>/`, however often it is decoded.

    Refused: dot segments, backslashes and encoded slashes or backslashes, at any decoding depth.
    """
    text = rest
    for _ in range(_DECODE_ROUNDS + 1):
        if "\\" in text or _ENCODED_SEPARATOR.search(text):
            return False
        if any(segment in (".", "..") for segment in text.split("/")):
            return False
        decoded = percent_decode(text)
        if decoded == text:
            return True
        text = decoded
    return False


def split_target(target: str) -> tuple[str, str]:
    """The raw path and the raw query (without `?`) of a request target."""
    path, _, query = target.partition("?")
    return path, query


def route(config: WorkerConfig, path: str, query: str) -> Route | None:
    """The provider route of a raw path: `/v1/…` is OpenAI without `/v1`, `/<slug>/…` is as is."""
    first, slash, rest = path[1:].partition("/")
    provider = config.provider("openai" if first == "v1" else first)
    if provider is None or not path.startswith("/"):
        return None
    return Route(provider, slash + rest, query)


def forwarded_query(query: str) -> str:
    """The query string without the parameters that are stripped headers in another form
    (`STRIPPED_QUERY_PARAMETERS`, `alt` but `sse` and `json`), others untouched."""
    parts = query.split("&")
    kept = [part for part in parts if not _stripped_parameter(part)]
    # A query with nothing stripped goes upstream byte for byte.
    return query if len(kept) == len(parts) else "&".join(part for part in kept if part)


def _stripped_parameter(part: str) -> bool:
    name, _, value = part.partition("=")
    decoded = percent_decode(name).lower()
    if decoded in ALT_PARAMETERS:
        return percent_decode(value).lower() not in KEPT_ALT_VALUES
    return decoded in STRIPPED_QUERY_PARAMETERS


def query_keys(query: str) -> list[str]:
    """The decoded values of the `key` query parameters."""
    values = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if percent_decode(name) == "key":
            values.append(percent_decode(value))
    return values


def client_candidates(provider: Provider, headers: Mapping[str, str], query: str) -> list[str]:
    """Every token the client presented, in order: bearer, the provider's header, `?key=`.

    One candidate per place at most: a query of thousands of `key=` values must not buy an
    unauthenticated client thousands of hashes.
    """
    candidates = []
    bearer = _BEARER.fullmatch(headers.get("authorization", ""))
    if bearer:
        candidates.append(bearer.group(1))
    candidates += [headers[h] for h in provider.client_key_headers if headers.get(h)]
    if provider.client_key_query:
        candidates += [value for value in query_keys(query) if value][:1]
    return candidates


def authenticate(candidates: list[str], tokens: Sequence[tuple[str, str]]) -> str | None:
    """The name of the client whose token is among `candidates`, compared in constant time."""
    digests = [(name, hashlib.sha256(token.encode()).digest()) for name, token in tokens]
    for candidate in candidates:
        presented = hashlib.sha256(candidate.encode()).digest()
        match = None
        # Every token is compared, so the time taken does not say which one (or how much) matched.
        for name, digest in digests:
            if hmac.compare_digest(presented, digest) and match is None:
                match = name
        if match is not None:
            return match
    return None


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
    delay = key_limits.retry_after_ms_value(headers.get(key_limits.RETRY_AFTER_MS_HEADER))
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


def is_json(content_type: str | None) -> bool:
    """Whether a `Content-Type` is JSON (`application/json` or a `+json` type)."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


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


def _error(document: object) -> dict[str, object]:
    """The `error` object of a provider's error body (Google's streaming endpoints wrap the body
    in a list), or an empty one."""
    if isinstance(document, list) and document:
        document = document[0]
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}


def _details(document: object) -> list[dict[str, object]]:
    """The objects of `error.details[]` (Google's structured error details)."""
    details = _error(document).get("details")
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
    return any(detail.get("reason") == reason for detail in _details(document))


def insufficient_quota(status: int, document: object) -> bool:
    """Whether an answer is an OpenAI-style 429 for a key whose billing is exhausted."""
    error = _error(document) if status == 429 else {}
    return INSUFFICIENT_QUOTA in (error.get("code"), error.get("type"))


def quota_ids(document: object) -> list[object]:
    """The `quotaId` of every violation in a Google error's `QuotaFailure` details."""
    ids = []
    for detail in _details(document):
        violations = detail.get("violations")
        if detail.get("@type") == QUOTA_FAILURE_TYPE and isinstance(violations, list):
            ids += [v.get("quotaId") if isinstance(v, dict) else None for v in violations]
    return ids


def per_day_quota(status: int, document: object) -> bool:
    """Whether an answer is Google's 429 for a quota that is per day (`quotaId` with `PerDay`)."""
    if status != 429:
        return False
    return any(isinstance(quota, str) and PER_DAY_QUOTA in quota for quota in quota_ids(document))


def per_model_quota(provider: Provider, status: int, document: object) -> bool:
    """Whether an answer is a 429 of a provider whose quotas can be per model, for quotas that
    all are (`key_limits.per_model_quota`): the key rests for the request's model only."""
    return (
        status == 429
        and provider.slug in key_limits.MODEL_QUOTA_PROVIDERS
        and key_limits.per_model_quota(quota_ids(document))
    )


def request_model(provider: Provider, method: str, rest: str, body: bytes) -> str | None:
    """The model a request names, for a rest of one model only: its path's (Google's
    `models/<model>:<method>`), else its body's top-level `model`; None when it names none."""
    slug = provider.slug
    _, model = table_endpoint(slug, method, client_path(slug, decoded_path(rest)))
    if model is not None:
        return model
    try:
        document = read_json(body)
    except UnreadableBody:
        return None
    named = document.get("model") if isinstance(document, dict) else None
    return checked_name(slug, named, True) if isinstance(named, str) and named else None


def retry_delay_ms(status: int, document: object) -> int | None:
    """Google's `RetryInfo.retryDelay` of a 429 (`"37s"`, `"1.5s"`) in milliseconds, rounded up
    and capped like a `Retry-After`; None if there is none."""
    if status != 429:
        return None
    for detail in _details(document):
        delay = detail.get("retryDelay")
        if detail.get("@type") != RETRY_INFO_TYPE or not isinstance(delay, str):
            continue
        match = _DURATION.fullmatch(delay)
        if match is None:
            continue
        nanos = int((match.group(2) or "").ljust(9, "0"))
        return min(int(match.group(1)) * 1000 + (nanos + 999_999) // 1_000_000, MAX_COOLDOWN_MS)
    return None


def next_quota_day_ms(now_ms: int) -> int:
    """The next midnight in `QUOTA_DAY_ZONE` after `now_ms`, when Google's per-day quotas reset."""
    zone = ZoneInfo(QUOTA_DAY_ZONE)
    today = datetime.fromtimestamp(now_ms // 1000, zone).date()
    midnight = datetime.combine(today + timedelta(days=1), wall_time(0), tzinfo=zone)
    return int(midnight.timestamp()) * 1000


def held_rest_until(status: int, document: object, now_ms: int) -> int | None:
    """Until when an answer condemns its key for long, else None: a refusal (401/402/403, or a
    400 counted as one), billing exhausted, or a per-day quota spent.

    Such a rest is applied only once another key answered the same request without such a
    verdict: when every key gets one, the request (a bogus OpenAI-Organization, a model with a
    tiny daily quota) is at fault rather than the keys, and resting them all would let any client
    retire the whole pool.
    """
    if status in KEY_REJECTED_STATUSES or insufficient_quota(status, document):
        return now_ms + REJECTED_COOLDOWN_MS
    if per_day_quota(status, document):
        return next_quota_day_ms(now_ms)
    return None


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


def is_failover(status: int) -> bool:
    """Whether another key may get a better answer than this status."""
    return status in FAILOVER_STATUSES or 500 <= status <= 599


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


def client_cache_key(client: str, value: str) -> str:
    """A client's own `cf-aig-cache-key`, scoped to that client.

    Forwarded as is, a client could store any answer under the key the Worker computes for
    another request (or another client's key) and so poison what other clients get from the
    cache. A client name has no `:`, and the Worker's own keys are bare hex, so none can collide.
    """
    return f"{client}:{value}"


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


def error_body_read(status: int, headers: Mapping[str, str]) -> bool:
    """Whether the Worker reads an answer's body: an error status whose declared length, if any,
    is within `ERROR_PEEK_BYTES`, whatever its content type (a `text/plain` or `text/html` error
    page may quote a key as well). Such a body is redacted before it reaches the client (one read
    past the bound, as it streams); only a JSON one is parsed, to tell who refused and why."""
    declared = headers.get("content-length", "")
    return status >= 400 and not (_DIGITS.fullmatch(declared) and int(declared) > ERROR_PEEK_BYTES)


def scrubbed(answer: UpstreamResponse, secrets: tuple[str, ...]) -> UpstreamResponse:
    """An upstream answer as it may reach the client: headers scrubbed, and a body the Worker read
    (`error_body_read`) with every pool key and the gateway token redacted however it is written
    (`secret_end`): escaped, percent-encoded, as an HTML reference or in another letter case."""
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


# --- Client policy (DESIGN §4 "Client policy"): checked after authentication, before any upstream
# call, only for the clients a policy names. The Worker implements the same functions.

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


def decoded_path(rest: str) -> str:
    """A route's remainder percent-decoded as often as the gateway and the provider might (the
    path is contained, so this ends)."""
    text = rest
    for _ in range(_DECODE_ROUNDS + 1):
        decoded = percent_decode(text)
        if decoded == text:
            break
        text = decoded
    return text


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
) -> Response | None:
    """The refusal of the client's policy for this request, or None when it may go upstream;
    `encoding` is the request's `Content-Encoding`.

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


# --- End of client policy.


@dataclass
class KeyPool:
    """One provider's keys in this isolate: where its rotation is, and what each key has left
    (`key_limits` keeps, reads and weighs that)."""

    keys: tuple[str, ...] = field(repr=False)
    next: int
    source: str = field(default="", repr=False)
    """The binding text the keys came from."""
    states: list[KeyState] = field(init=False, repr=False)
    """Each key's state, in the order of `keys`."""
    indexes: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.states = [KeyState() for _ in self.keys]
        self.indexes = {key: index for index, key in enumerate(self.keys)}

    def state(self, key: str) -> KeyState:
        """What this isolate knows of `key`."""
        return self.states[self.indexes[key]]

    def start(self) -> int:
        """The index this request starts at; the next request starts one further."""
        index = self.next % len(self.keys)
        self.next += 1
        return index

    def pick(
        self, start: int, tried: set[str], now_ms: int, model: str | None = None
    ) -> str | None:
        """The untried key with the most left that is not resting (rotation order from `start`
        among equals), else the one resting on a guess that recovers soonest, else None."""
        index = key_limits.choose(self.keys, self.states, start, tried, now_ms, model)
        return None if index is None else self.keys[index]

    def rest(
        self,
        key: str,
        until_ms: int,
        *,
        stated: bool = False,
        model: str | None = None,
        now_ms: int = 0,
    ) -> None:
        """Keep `key` out of use until `until_ms` (for `model` only, if given), never shortening
        a longer rest; `stated` when the provider stated the time."""
        key_limits.rest(self.state(key), until_ms, stated, now_ms, model)

    def exhausted_until(self, now_ms: int, model: str | None = None) -> float | None:
        """When every key rests on a time its provider stated, the soonest; else None."""
        return key_limits.exhausted_until(self.states, now_ms, model)

    def learn(
        self,
        key: str,
        mark: int,
        provider: Provider,
        answer: UpstreamResponse,
        status: int,
        document: object,
        now_ms: int,
        model: str | None,
    ) -> bool:
        """Learn what an answer says of `key` (`mark` from `key_limits.sending`): its rate-limit
        headers, and on a 429 its rest. True when the 429 is the request's own fault: it goes
        to the client as it is, with no failover and no rest."""
        state = self.state(key)
        known = state.requests_limit > 0 or state.tokens_limit > 0
        style = key_limits.RATE_LIMIT_STYLES.get(provider.slug)
        read = key_limits.observe(state, style, answer.headers, now_ms, mark)
        if status != 429:
            if status < 400:
                key_limits.answered(state)
            return False
        if key_limits.request_too_large(status, _error(document)):
            return True
        delay = stated_delay_ms(answer.headers, now_ms, retry_delay_ms(status, document))
        scope = model if per_model_quota(provider, status, document) else None
        if delay is not None:
            key_limits.rest(state, now_ms + delay, True, now_ms, scope)
        elif not read or key_limits.stated_until(state, now_ms, scope) <= now_ms:
            # Nothing stated when the key takes requests again: a guess, still tried as a last
            # resort.
            key_limits.rest(state, now_ms + RATE_LIMITED_COOLDOWN_MS, False, now_ms, scope)
        if known and not insufficient_quota(status, document):
            key_limits.contended(state)
        return False


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
                return _method_not_allowed(request.method)
            return Response(200, {"content-type": "application/json"}, b'{"status":"ok"}')
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
            return _method_not_allowed(request.method)
        provider = matched.provider
        candidates = client_candidates(provider, headers, query)
        client = authenticate(candidates, parse_client_tokens(self.binding_text(CLIENT_TOKENS)))
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
        return self._attempts(request, headers, matched, client, pool, send)

    def _attempts(
        self,
        request: ClientRequest,
        headers: dict[str, str],
        matched: Route,
        client: str,
        pool: KeyPool,
        send: Send,
    ) -> Response:
        """Try keys in rotation until one gets an answer no other key could better."""
        provider = matched.provider
        upstream_path = matched.upstream_path()
        base = forwarded_headers(self.config, client, headers)
        if self.config.cache and CACHE_KEY_HEADER not in base:
            scope = client if self.config.cache_scope == "client" else None
            base[CACHE_KEY_HEADER] = cache_key(
                request.method, upstream_path, base, request.body, scope
            )
        gateway_token = self.env.get(GATEWAY_TOKEN, "").strip()
        if gateway_token:
            base["cf-aig-authorization"] = f"Bearer {gateway_token}"
        secrets = (*pool.keys, gateway_token)
        # GET carries no body upstream; DELETE only if it has one.
        sends_body = request.method == "POST" or (request.method == "DELETE" and request.body)
        body = request.body if sends_body else None
        # Google's quotas can be per model: a request to it is known by its model too.
        model = (
            request_model(provider, request.method, matched.rest, request.body)
            if provider.slug in key_limits.MODEL_QUOTA_PROVIDERS
            else None
        )
        start = pool.start()
        tried: set[str] = set()
        # Keys refused (401/402/403) or otherwise condemned for long in this request, with the
        # end of their rest. They rest only once another key answers the same request without
        # such a verdict: when every key gets one, the request (a bogus OpenAI-Organization,
        # say) or the gateway's own auth is at fault, not the keys, and resting them all would
        # let any client retire the whole pool.
        refused: list[tuple[str, int, str | None]] = []
        # The last attempt's answer; None when it did not reach the gateway.
        answer: UpstreamResponse | None = None
        for _ in range(self.config.max_attempts):
            key = pool.pick(start, tried, self.clock_ms(), model)
            if key is None:
                # The keys left all rest on times their provider stated: none is sent to, and
                # when every key of the pool does, the client is told when one will take it.
                until = pool.exhausted_until(self.clock_ms(), model)
                if until is not None and len(tried) < len(pool.keys):
                    return pool_exhausted(provider, until, self.clock_ms())
                break
            tried.add(key)
            mark = key_limits.sending(pool.state(key))
            attempt_headers = {
                **base,
                provider.key_header: provider.key_prefix + key,
                "cf-aig-metadata": json.dumps(
                    {"client": client, "keyId": key_id(key)}, separators=(",", ":")
                ),
            }
            result = send(
                UpstreamRequest(
                    request.method, self.config.gateway_url + upstream_path, attempt_headers, body
                )
            )
            if result == "timeout":
                return _timeout()
            if result == "network-error":
                answer = None
                continue
            answer = result
            now = self.clock_ms()
            document = error_document(answer.status, answer.headers, answer.body)
            gateway_code = gateway_refusal(document)
            if gateway_code is not None:
                # The gateway itself refused: no key is at fault (none rests), and another key
                # would meet the same refusal (and count against the same limit) again.
                policy = policy_of_client(self.config, client)
                return gateway_answer(gateway_code, scrubbed(answer, secrets), client, policy)
            # A provider's 400 refusing the key counts as a 401 (it is passed through if last).
            key_invalid = key_invalid_400(provider.slug, answer.status, document)
            status = 401 if key_invalid else answer.status
            held = held_rest_until(status, document, now)
            if held is not None:
                scope = model if per_model_quota(provider, status, document) else None
                refused.append((key, held, scope))
            else:
                for refused_key, until, scope in refused:
                    pool.rest(refused_key, until, model=scope, now_ms=now)
                refused.clear()
            own_fault = pool.learn(key, mark, provider, answer, status, document, now, model)
            if not is_failover(status) or own_fault:
                reply = scrubbed(answer, secrets)
                return Response(reply.status, reply.headers, reply.body)
        return _final(None if answer is None else scrubbed(answer, secrets), provider)


def pool_exhausted(provider: Provider, until: float, now_ms: int) -> Response:
    """`429 pool_exhausted`: every key rests on a time its provider stated, the soonest `until`."""
    seconds, wait_ms = key_limits.pool_exhausted_wait(until, now_ms)
    return error(
        429,
        key_limits.POOL_EXHAUSTED,
        key_limits.pool_exhausted_message(provider.slug, seconds),
        {"retry-after": str(seconds), key_limits.RETRY_AFTER_MS_HEADER: str(wait_ms)},
        kind=RATE_LIMIT_ERROR_TYPE,
    )


def _method_not_allowed(method: str) -> Response:
    return error(
        405,
        "method_not_allowed",
        f"method {method} is not allowed: use GET, POST or DELETE",
        {"allow": ALLOW},
    )


def _timeout() -> Response:
    return error(504, "upstream_timeout", "the gateway did not answer in time")


def _final(answer: UpstreamResponse | None, provider: Provider) -> Response:
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
