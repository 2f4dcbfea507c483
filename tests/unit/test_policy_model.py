"""The model's client policy where the vectors cannot reach: time passing, and the pure helpers."""

from __future__ import annotations

import json

import pytest

from infra.settings import load, policy_of
from infra.worker.config import ClientRequest, UpstreamRequest, UpstreamResponse, WorkerConfig
from infra.worker.endpoints import glob_matches
from infra.worker.policy import FixedWindowLimiter, budget_exceeded_message, policy_of_client
from infra.worker.worker import Isolate

EXPIRES_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z
ENV = {
    "OPENAI_API_KEYS": "sk-test-a",
    "CLIENT_TOKENS": "alice:tok-test-alice-0001 bob:tok-test-bob-000002",
}


def _config(clients: object) -> WorkerConfig:
    settings, _ = load(
        {"accountId": "0" * 32, "providerKeys": {"openai": ["x"]}, "clients": clients}, "unit"
    )
    return WorkerConfig.from_settings(settings, rotation_offset=0)


def _ok(request: UpstreamRequest) -> UpstreamResponse:
    return UpstreamResponse(200, {}, b"ok")


def _chat(isolate: Isolate, token: str = "tok-test-alice-0001") -> tuple[int, str | None]:
    """Status and error code of one chat completion through the model."""
    response = isolate.handle(
        ClientRequest(
            "POST",
            "/v1/chat/completions",
            {"authorization": f"Bearer {token}"},
            b'{"model":"gpt-4o-mini"}',
        ),
        _ok,
    )
    code = json.loads(response.body)["error"]["code"] if response.status != 200 else None
    return response.status, code


def test_rate_limit_window_resets_after_its_period() -> None:
    """The window opens with the client's first request and ends `period` seconds later; the
    next request after it is counted afresh, and a refused call does not stretch the window."""
    now = [EXPIRES_MS]
    isolate = Isolate(
        _config({"alice": {"rateLimit": {"limit": 2, "period": 10}}}), ENV, clock_ms=lambda: now[0]
    )
    assert [_chat(isolate)[0], _chat(isolate)[0]] == [200, 200]
    now[0] += 9_999
    assert _chat(isolate) == (429, "rate_limited")
    now[0] += 1
    assert [_chat(isolate)[0], _chat(isolate)[0], _chat(isolate)[0]] == [200, 200, 429]


def test_limiter_counts_each_key_apart() -> None:
    """The fake binding keeps one window per key, and counts every call it is asked."""
    limiter = FixedWindowLimiter(limit=1, period=60)
    assert [limiter.check("alice", 0), limiter.check("bob", 0), limiter.check("alice", 1)] == [
        True,
        True,
        False,
    ]
    assert limiter.check("alice", 60_000) is True
    assert limiter.calls == 4


def test_expiry_is_exact_to_the_millisecond() -> None:
    """A client is let through until its expiry moment and refused from that moment on."""
    now = [EXPIRES_MS - 1]
    isolate = Isolate(
        _config({"alice": {"expires": "2027-01-15T08:00:00Z"}}), ENV, clock_ms=lambda: now[0]
    )
    assert _chat(isolate) == (200, None)
    now[0] += 1
    assert _chat(isolate) == (401, "client_token_expired")
    assert _chat(isolate, "tok-test-bob-000002") == (200, None)


def test_client_without_policy_never_reaches_a_limiter() -> None:
    """Requests of a client no policy names create and call no rate-limit binding."""
    isolate = Isolate(_config({"alice": {"rateLimit": {"limit": 1, "period": 60}}}), ENV)
    for _ in range(3):
        assert _chat(isolate, "tok-test-bob-000002") == (200, None)
    assert isolate.rate_limiters == {}
    _chat(isolate)
    assert [limiter.calls for limiter in isolate.rate_limiters.values()] == [1]


@pytest.mark.parametrize("client", ["alice", "bob", "carol"])
def test_model_picks_the_policy_settings_picks(client: str) -> None:
    """The Worker's lookup (own entry, else "*") agrees with `infra.settings.policy_of`."""
    raw = {
        "accountId": "0" * 32,
        "providerKeys": {"openai": ["x"]},
        "clients": {"*": {"models": ["a"]}, "alice": {}, "bob": {"models": ["b"]}},
    }
    settings, _ = load(raw, "unit")
    config = WorkerConfig.from_settings(settings)
    assert policy_of_client(config, client) == policy_of(settings, client)


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("*", "", True),
        ("**", "x", True),
        ("a*", "a", True),
        ("*a", "ba", True),
        ("a*a", "a", False),
        ("a*b*a", "aba", True),
        ("a*b*a", "ab", False),
        ("*.*", "gpt.4", True),
        ("*.*", "gpt-4", False),
        ("claude-*", "CLAUDE-3", False),
    ],
)
def test_glob_matches_whole_names(pattern: str, name: str, matches: bool) -> None:
    """`*` matches any run of characters (none included); everything else matches itself."""
    assert glob_matches(pattern, name) is matches


def test_budget_exceeded_message_names_client_and_budget() -> None:
    """The 2045 answer's message names the client, and its budget (or the "*" one) if any."""
    config = _config(
        {"alice": {"budget": {"limit": 5, "window": 86400}}, "*": {"models": ["gpt-4o-mini"]}}
    )
    alice = budget_exceeded_message("alice", policy_of_client(config, "alice"))
    bob = budget_exceeded_message("bob", policy_of_client(config, "bob"))
    assert alice == (
        "client alice has reached a spend limit of this gateway (its budget is $5.00 per "
        "86400 s); requests are refused until the limit's window allows more spending"
    )
    assert bob == (
        "client bob has reached a spend limit of this gateway; requests are refused until the "
        "limit's window allows more spending"
    )
