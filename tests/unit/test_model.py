"""Reference-model behaviour the vectors cannot show in workerd: time passing, parsing edges."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from infra.settings import load
from infra.worker import body_models
from infra.worker.auth import parse_client_tokens, split_list
from infra.worker.config import ClientRequest, UpstreamRequest, UpstreamResponse, WorkerConfig
from infra.worker.key_limits import MAX_COOLDOWN_MS
from infra.worker.pool import KeyPool
from infra.worker.routing import path_is_contained
from infra.worker.scrubbing import error_document, scrubbed_headers
from infra.worker.verdicts import (
    RATE_LIMITED_COOLDOWN_MS,
    REJECTED_COOLDOWN_MS,
    SERVER_ERROR_FAILOVER_MS,
    cooldown_ms,
    gateway_refusal,
    key_invalid_400,
    next_quota_day_ms,
    retry_after_ms,
    retry_delay_ms,
)
from infra.worker.worker import Isolate
from tests.vectors.body_models import BODY_MODELS

NOW = 1_800_000_000_000
TOKEN = "tok-test-laptop-01"
ENV = {"OPENAI_API_KEYS": "sk-test-a,sk-test-b", "CLIENT_TOKENS": f"laptop:{TOKEN}"}


def _config(**overrides: object) -> WorkerConfig:
    settings, _ = load(
        {"accountId": "0" * 32, "providerKeys": {"openai": ["x"]}, **overrides}, "unit"
    )
    return WorkerConfig.from_settings(settings, rotation_offset=0)


def _chat() -> ClientRequest:
    return ClientRequest(
        "POST", "/v1/chat/completions", {"Authorization": f"Bearer {TOKEN}"}, b"{}"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5_000),
        ("0", 0),
        ("007", 7_000),
        ("99999999", MAX_COOLDOWN_MS),
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds(value: str | None, expected: int | None) -> None:
    """Retry-After in whole seconds, capped; anything unreadable is None (the default applies)."""
    assert retry_after_ms(value, NOW) == expected


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP-date counts from now, never below zero, capped."""
    date = "Wed, 13 Jan 2027 08:00:10 GMT"
    now = 1_799_827_200_000  # 2027-01-13 08:00:00 UTC
    assert retry_after_ms(date, now) == 10_000
    assert retry_after_ms(date, now + 60_000) == 0
    assert retry_after_ms(date, now - 10 * MAX_COOLDOWN_MS) == MAX_COOLDOWN_MS


@pytest.mark.parametrize(
    ("status", "headers", "rest"),
    [
        (429, {"retry-after": "3"}, 3_000),
        (429, {}, RATE_LIMITED_COOLDOWN_MS),
        (401, {"retry-after": "3"}, REJECTED_COOLDOWN_MS),
        (402, {}, REJECTED_COOLDOWN_MS),
        (403, {}, REJECTED_COOLDOWN_MS),
        (500, {"retry-after": "30"}, 0),
        (200, {}, 0),
    ],
)
def test_cooldown_by_status(status: int, headers: dict[str, str], rest: int) -> None:
    """Refused keys rest long, rate-limited keys as told (or a short default), others not at all."""
    assert cooldown_ms(status, headers, NOW) == rest


def test_rested_key_returns_when_its_time_is_up() -> None:
    """A key that got 429 with Retry-After: 30 is skipped for 30 s, then back in rotation."""
    clock = [NOW]
    isolate = Isolate(_config(), ENV, clock_ms=lambda: clock[0])
    keys: list[str] = []

    def send(request: UpstreamRequest) -> UpstreamResponse:
        keys.append(request.headers["authorization"].removeprefix("Bearer "))
        if len(keys) == 1:
            return UpstreamResponse(429, {"retry-after": "30"})
        return UpstreamResponse(200)

    isolate.handle(_chat(), send)  # a: 429, b: 200
    isolate.handle(_chat(), send)  # starts at b
    isolate.handle(_chat(), send)  # starts at a, which rests: b
    clock[0] += 30_000
    isolate.handle(_chat(), send)  # starts at b
    isolate.handle(_chat(), send)  # starts at a, rested
    assert keys == ["sk-test-a", "sk-test-b", "sk-test-b", "sk-test-b", "sk-test-b", "sk-test-a"]


def test_random_offsets_spread_first_keys() -> None:
    """Without a pinned offset, fresh isolates start on different keys."""
    settings, _ = load({"accountId": "0" * 32, "providerKeys": {"openai": ["x"]}}, "unit")
    config = WorkerConfig.from_settings(settings)
    first: Counter[str] = Counter()
    for _ in range(300):
        sent: list[str] = []

        def send(request: UpstreamRequest, sent: list[str] = sent) -> UpstreamResponse:
            sent.append(request.headers["authorization"])
            return UpstreamResponse(200)

        Isolate(config, ENV).handle(_chat(), send)
        first[sent[0]] += 1
    assert set(first) == {"Bearer sk-test-a", "Bearer sk-test-b"}
    assert min(first.values()) > 60


def test_all_resting_picks_soonest_then_rotation_order() -> None:
    """With every key resting, the soonest to recover goes first; ties keep rotation order."""
    pool = KeyPool(("a", "b", "c"), 0)
    pool.rest("a", NOW + 300)
    pool.rest("b", NOW + 100)
    pool.rest("c", NOW + 100)
    assert pool.pick(0, set(), NOW) == "b"
    assert pool.pick(2, set(), NOW) == "c"
    assert pool.pick(0, {"b", "c"}, NOW) == "a"
    assert pool.pick(0, {"a", "b", "c"}, NOW) is None


def test_rest_never_shortens() -> None:
    """A shorter rest does not cut a longer one short."""
    pool = KeyPool(("a",), 0)
    pool.rest("a", NOW + 900)
    pool.rest("a", NOW + 10)
    assert pool.key("a").whole.rest_until == NOW + 900


@pytest.mark.parametrize(
    ("rest", "contained"),
    [
        ("/chat/completions", True),
        ("", True),
        ("/files/a..b", True),
        ("/models/gpt%2e4", True),
        ("/..", False),
        ("/%2e%2E", False),
        ("/a%2Fb", False),
        ("/a%5cb", False),
        ("/a\\b", False),
        ("/%252e%252e", False),
        ("/%25252f", False),
        ("/%2525252e%2525252e", False),
    ],
)
def test_path_containment(rest: str, contained: bool) -> None:
    """Dot segments and encoded separators are refused at any decoding depth, case-insensitively."""
    assert path_is_contained(rest) is contained


def test_binding_lists() -> None:
    """Bindings split on commas, white space, new lines; CLIENT_TOKENS entries need both parts,
    and a name repeats once per token (a client rotating holds two)."""
    assert split_list(" a,b\n\nc\t,a ") == ("a", "b", "c")
    assert split_list(None) == ()
    tokens = parse_client_tokens("laptop:t1:x, :t2 bad ci: laptop:t3 ci:t4")
    assert tokens == [("laptop", "t1:x"), ("laptop", "t3"), ("ci", "t4")]


def test_gateway_url_has_no_trailing_slash() -> None:
    """An `--upstream` URL with a trailing slash does not double the slash before the provider."""
    settings, _ = load({"accountId": "0" * 32, "providerKeys": {"openai": ["x"]}}, "unit")
    config = WorkerConfig.from_settings(settings, gateway_url="http://127.0.0.1:9/gw/")
    assert config.gateway_url == "http://127.0.0.1:9/gw"


_REASON = b'{"error":{"code":400,"details":[{"reason":"API_KEY_INVALID"}]}}'


@pytest.mark.parametrize(
    ("slug", "status", "body", "expected"),
    [
        ("google-ai-studio", 400, _REASON, True),
        ("google-ai-studio", 400, b"[" + _REASON + b"]", True),
        ("google-ai-studio", 401, _REASON, False),
        ("openai", 400, _REASON, False),
        ("google-ai-studio", 400, b'{"error":{"message":"reason API_KEY_INVALID"}}', False),
        ("google-ai-studio", 400, b'{"error":{"details":{"reason":"API_KEY_INVALID"}}}', False),
        ("google-ai-studio", 400, b'{"error":{"details":["API_KEY_INVALID"]}}', False),
        ("google-ai-studio", 400, b"API_KEY_INVALID", False),
        ("google-ai-studio", 400, b"[]", False),
        ("google-ai-studio", 400, b"null", False),
        ("google-ai-studio", 400, _REASON[:-1] + b" " * 9000 + b"}", False),
    ],
)
def test_key_invalid_400_reads_only_the_structured_reason(
    slug: str, status: int, body: bytes, expected: bool
) -> None:
    """Only a small JSON 400 whose error.details[].reason names the key refusal counts."""
    document = error_document(status, {"content-type": "application/json"}, body)
    assert key_invalid_400(slug, status, document) is expected


def test_scrubbed_headers_drop_cors_and_secret_echoes() -> None:
    """Upstream CORS headers and any header quoting a secret are dropped; an empty secret is no
    secret (it would match every header)."""
    headers = {
        "access-control-allow-origin": "*",
        "x-echo": "Bearer sk-test-a",
        "x-request-id": "req-1",
        "content-type": "application/json",
    }
    kept = scrubbed_headers(headers, ("sk-test-a", ""))
    assert kept == {"x-request-id": "req-1", "content-type": "application/json"}


def _utc_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("now", "midnight"),
    [
        # Saturday noon PST: Sunday's midnight is still PST (08:00 UTC); clocks change at 02:00.
        ("2026-03-07T20:00:00", "2026-03-08T08:00:00"),
        # Sunday noon PDT: Monday's midnight is PDT (07:00 UTC).
        ("2026-03-08T19:00:00", "2026-03-09T07:00:00"),
        # Saturday noon PDT before the autumn change: Sunday's midnight is PDT.
        ("2026-10-31T19:00:00", "2026-11-01T07:00:00"),
        # 01:30 PST, the second 01:30 of the autumn night: Monday's midnight is PST.
        ("2026-11-01T09:30:00", "2026-11-02T08:00:00"),
        # 20:00 PDT is already the next day in UTC: midnight is still Pacific's.
        ("2026-06-16T03:00:00", "2026-06-16T07:00:00"),
        # Midnight exactly: the next one is a day away; a second before, it is a second away.
        ("2026-06-16T07:00:00", "2026-06-17T07:00:00"),
        ("2026-06-16T06:59:59", "2026-06-16T07:00:00"),
    ],
)
def test_next_quota_day_is_pacific_midnight(now: str, midnight: str) -> None:
    """Google's per-day quotas reset at the next midnight in Los Angeles, daylight saving or not."""
    assert next_quota_day_ms(_utc_ms(now)) == _utc_ms(midnight)
    assert next_quota_day_ms(_utc_ms(now) + 999) == _utc_ms(midnight)


def _google_429(violations: list[str], delay: str | None = None) -> bytes:
    details: list[object] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": quota} for quota in violations],
        }
    ]
    if delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    return json.dumps({"error": {"code": 429, "details": details}}).encode()


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        ("37s", 37_000),
        ("1.5s", 1_500),
        ("57.238747106s", 57_239),
        ("0.0001s", 1),
        ("0s", 0),
        ("86400s", MAX_COOLDOWN_MS),
        ("37", None),
        ("-1s", None),
        ("1.s", None),
        ("1.1234567891s", None),
        ("1m", None),
    ],
)
def test_retry_delay_is_read_as_a_duration(delay: str, expected: int | None) -> None:
    """Google's retryDelay is seconds with up to nine decimals, rounded up to the millisecond and
    capped like a Retry-After; anything else is no delay."""
    document = json.loads(_google_429([], delay))
    assert retry_delay_ms(429, document) == expected
    assert retry_delay_ms(503, document) is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"name":"AiGatewayError","internalCode":2003}', 2003),
        (b'{"name":"AiGatewayError","internalCode":2009.0}', 2009),
        (b'{"name":"AiGatewayError","internalCode":"2003"}', None),
        (b'{"name":"AiGatewayError","internalCode":true}', None),
        (b'{"name":"AiGatewayError","internalCode":2003.5}', None),
        (b'{"name":"AiGatewayError"}', None),
        (b'{"name":"OtherError","internalCode":2003}', None),
        (b'[{"name":"AiGatewayError","internalCode":2003}]', None),
        (b'{"error":{"code":2003}}', None),
    ],
)
def test_gateway_refusal_needs_name_and_integer_code(body: bytes, code: int | None) -> None:
    """Only a body named AiGatewayError with an integer internalCode is the gateway's refusal."""
    document = error_document(429, {"content-type": "application/json"}, body)
    assert gateway_refusal(document) == code


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (200, {"content-type": "application/json"}, b'{"name":"AiGatewayError"}'),
        (429, {"content-type": "text/plain"}, b'{"name":"AiGatewayError"}'),
        (429, {}, b'{"name":"AiGatewayError"}'),
        (429, {"content-type": "application/json", "content-length": "9000"}, b"{}"),
        (429, {"content-type": "application/json"}, b'{"a":"' + b"x" * 9000 + b'"}'),
        (429, {"content-type": "application/json"}, b"not json"),
    ],
)
def test_error_document_reads_only_small_json_errors(
    status: int, headers: dict[str, str], body: bytes
) -> None:
    """A 2xx, a body that is not JSON by its type, or one over the bound is never read."""
    assert error_document(status, headers, body) is None


def test_per_day_quota_rests_the_key_until_pacific_midnight() -> None:
    """A key whose per-day Google quota is spent is skipped until midnight Pacific, and back at
    that very instant; its 0s retryDelay does not end the rest early."""
    clock = [_utc_ms("2026-06-15T19:00:00")]  # noon PDT
    env = {
        "GOOGLE_AI_STUDIO_API_KEYS": "goog-test-a,goog-test-b",
        "CLIENT_TOKENS": f"laptop:{TOKEN}",
    }
    config = _config(providerKeys={"google-ai-studio": ["x"]})
    isolate = Isolate(config, env, clock_ms=lambda: clock[0])
    keys: list[str] = []
    quota = _google_429(["GenerateRequestsPerDayPerProjectPerModel-FreeTier"], "0s")

    def send(request: UpstreamRequest) -> UpstreamResponse:
        keys.append(request.headers["x-goog-api-key"])
        if len(keys) == 1:
            return UpstreamResponse(429, {"content-type": "application/json"}, quota)
        return UpstreamResponse(200)

    request = ClientRequest(
        "POST", "/google-ai-studio/v1beta/models/m:generateContent", {"x-goog-api-key": TOKEN}
    )
    isolate.handle(request, send)  # a: per-day 429, b: 200
    clock[0] = _utc_ms("2026-06-16T06:59:59")
    isolate.handle(request, send)  # starts at b
    isolate.handle(request, send)  # starts at a, which rests: b
    clock[0] = _utc_ms("2026-06-16T07:00:00")
    isolate.handle(request, send)  # starts at b
    isolate.handle(request, send)  # starts at a, back at midnight
    a, b = "goog-test-a", "goog-test-b"
    assert keys == [a, b, b, b, b, a]


def test_insufficient_quota_rests_as_long_as_a_refusal() -> None:
    """A key out of billing quota rests REJECTED_COOLDOWN_MS, not the 429's Retry-After."""
    clock = [NOW]
    isolate = Isolate(_config(), ENV, clock_ms=lambda: clock[0])
    keys: list[str] = []
    body = b'{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}'

    def send(request: UpstreamRequest) -> UpstreamResponse:
        keys.append(request.headers["authorization"].removeprefix("Bearer "))
        if len(keys) == 1:
            headers = {"content-type": "application/json", "retry-after": "1"}
            return UpstreamResponse(429, headers, body)
        return UpstreamResponse(200)

    isolate.handle(_chat(), send)  # a: insufficient_quota, b: 200
    clock[0] += REJECTED_COOLDOWN_MS - 1
    isolate.handle(_chat(), send)  # starts at b
    isolate.handle(_chat(), send)  # starts at a, which rests: b
    clock[0] += 1
    isolate.handle(_chat(), send)  # starts at b
    isolate.handle(_chat(), send)  # starts at a, rested
    assert keys == ["sk-test-a", "sk-test-b", "sk-test-b", "sk-test-b", "sk-test-b", "sk-test-a"]


@pytest.mark.parametrize(("took_ms", "attempts"), [(4_999, 2), (5_000, 1), (60_000, 1)])
def test_a_5xx_fails_over_only_within_the_bound(took_ms: int, attempts: int) -> None:
    """A 5xx is tried on another key only while the request has taken less than
    SERVER_ERROR_FAILOVER_MS; later, it goes to the client as it came."""
    assert SERVER_ERROR_FAILOVER_MS == 5_000
    clock = [NOW]
    isolate = Isolate(_config(), ENV, clock_ms=lambda: clock[0])
    sent: list[UpstreamRequest] = []

    def send(request: UpstreamRequest) -> UpstreamResponse:
        sent.append(request)
        clock[0] += took_ms
        return UpstreamResponse(503, {"content-type": "application/json"}, b'{"error":{}}')

    assert isolate.handle(_chat(), send).status == 503
    assert len(sent) == attempts


@pytest.mark.parametrize(("body", "model"), BODY_MODELS)
def test_the_model_is_read_without_a_parse(body: bytes, model: str | None) -> None:
    """The routing read finds the top-level model wherever it is in the object, and reads nothing
    from nested objects, strings, escapes, other types or names over the bound."""
    assert body_models.top_level_model(body) == model
    if model is not None:
        assert body_models.top_level_model(body + b" trailing junk") == model
