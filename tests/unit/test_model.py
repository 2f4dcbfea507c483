"""Reference-model behaviour the vectors cannot show in workerd: time passing, parsing edges."""

from __future__ import annotations

from collections import Counter

import pytest

from infra.settings import load
from infra.worker.model import (
    MAX_COOLDOWN_MS,
    RATE_LIMITED_COOLDOWN_MS,
    REJECTED_COOLDOWN_MS,
    ClientRequest,
    Isolate,
    KeyPool,
    UpstreamRequest,
    UpstreamResponse,
    WorkerConfig,
    cooldown_ms,
    key_invalid_400,
    parse_client_tokens,
    path_is_contained,
    retry_after_ms,
    scrubbed_headers,
    split_list,
)

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
    assert pool.resting_until["a"] == NOW + 900


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
    """Only a small 400 whose error.details[].reason names the provider's key refusal counts."""
    assert key_invalid_400(slug, status, body) is expected


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
