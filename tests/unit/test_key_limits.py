"""The key pool's limits in the model (infra/worker/key_limits.py): what the vectors cannot show in
workerd, time passing and many requests (the model's clock is injected), and the header parsers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from infra.worker import key_limits, rate_limit_headers
from infra.worker.key_limits import (
    MAX_COOLDOWN_MS,
    SHARE_FLOOR,
    KeyState,
    PoolKey,
    choose,
    contended,
    exhausted_until,
    key_stated_until,
    model_state,
    pool_exhausted_wait,
    refuse_model,
    rest,
    sending,
    served,
    stated_until,
)
from infra.worker.rate_limit_headers import (
    observe,
    parse_count,
    parse_duration_ms,
    parse_timestamp_ms,
    retry_after_ms_value,
)
from tests.vectors.header_values import COUNTS, DURATIONS, MAX, RETRY_AFTER_MS, TIMESTAMPS
from tests.vectors.pool_promises import NOW as PROMISE_NOW
from tests.vectors.pool_promises import PROMISES, expected_results

NOW = 1_800_000_000_000
KEYS = ("a", "b", "c")


def _pool(*states: KeyState) -> list[PoolKey]:
    """Keys whose state for requests naming no model is each of `states`."""
    return [PoolKey(own=state) for state in states]


def test_longest_rest_matches_the_table() -> None:
    """The header table's cap is the model's longest rest."""
    assert MAX == MAX_COOLDOWN_MS


@pytest.mark.parametrize(("value", "expected"), DURATIONS)
def test_duration(value: str | None, expected: float | None) -> None:
    """OpenAI's reset durations read as Go writes them; anything else is not read."""
    assert parse_duration_ms(value) == expected


@pytest.mark.parametrize(("value", "expected"), COUNTS)
def test_count(value: str | None, expected: int | None) -> None:
    """Counts are non-negative integers of at most 15 digits."""
    assert parse_count(value) == expected


@pytest.mark.parametrize(("value", "expected"), TIMESTAMPS)
def test_timestamp(value: str | None, expected: int | None) -> None:
    """Anthropic's resets read as RFC 3339 times, offsets included."""
    assert parse_timestamp_ms(value) == expected


@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER_MS)
def test_retry_after_ms(value: str | None, expected: int | None) -> None:
    """retry-after-ms in whole milliseconds, rounded up, capped at the longest rest."""
    assert retry_after_ms_value(value) == expected


def _openai(limit: int, remaining: int, reset: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset,
    }


def test_zero_left_rests_until_the_next_request_not_the_full_reset() -> None:
    """At 0 of 5,000 a minute, whole again in 60 s, the next request comes after 12 ms."""
    state = KeyState()
    assert observe(state, "openai", _openai(5000, 0, "1m0s"), NOW, sending(state, NOW))
    assert stated_until(state, NOW) == NOW + 12
    assert choose(("a",), _pool(state), 0, set(), NOW + 11, None) is None
    assert choose(("a",), _pool(state), 0, set(), NOW + 12, None) == 0


def test_an_older_answer_says_less_and_is_not_read() -> None:
    """An answer to an earlier request that arrives after a later one's does not overwrite it."""
    state = KeyState()
    first, second = sending(state, NOW), sending(state, NOW)
    assert observe(state, "openai", _openai(10, 5, "1s"), NOW, second)
    assert not observe(state, "openai", _openai(10, 0, "1s"), NOW, first)
    assert state.requests_left == 5


def test_requests_in_flight_count_against_what_is_left() -> None:
    """Requests sent since the count was read are taken off it: with 1 left and one in flight,
    the key waits for the next refill."""
    state = KeyState()
    assert observe(state, "openai", _openai(10, 1, "9s"), NOW, sending(state, NOW))
    assert stated_until(state, NOW) <= NOW
    sending(state, NOW)
    assert stated_until(state, NOW) == NOW + 1_000


def test_anthropic_tightest_token_limit_counts() -> None:
    """Of Anthropic's token limits, the one with the least left (as a share) is the key's."""
    headers = {
        "anthropic-ratelimit-tokens-limit": "100000",
        "anthropic-ratelimit-tokens-remaining": "90000",
        "anthropic-ratelimit-tokens-reset": "2026-01-01T00:01:00Z",
        "anthropic-ratelimit-output-tokens-limit": "16000",
        "anthropic-ratelimit-output-tokens-remaining": "800",
        "anthropic-ratelimit-output-tokens-reset": "2026-01-01T00:01:00Z",
    }
    state = KeyState()
    assert observe(state, "anthropic", headers, 1_767_225_600_000, sending(state, NOW))
    assert (state.tokens_limit, state.tokens_left) == (16_000, 800)
    assert state.requests_limit == 0


def test_providers_without_headers_read_nothing() -> None:
    """Google states its limits in 429 bodies only: its answers are not read for headers."""
    state = KeyState()
    assert not observe(state, None, _openai(1, 0, "1h"), NOW, sending(state, NOW))
    assert rate_limit_headers.RATE_LIMIT_STYLES.get("google-ai-studio") is None
    assert rate_limit_headers.RATE_LIMIT_STYLES["groq"] == "openai"


@pytest.mark.parametrize(
    ("limits", "expected"),
    [((300, 100, 100), (0.6, 0.2, 0.2)), ((8, 8, 2), (0.444, 0.444, 0.111))],
)
def test_tiers_carry_load_in_proportion_to_their_limits(
    limits: tuple[int, int, int], expected: tuple[float, float, float]
) -> None:
    """Token buckets of different sizes, refilled over the same window, each answering with its
    count: at 80% of the pool's capacity the keys' shares follow their limits and none runs dry."""
    window_ms = 10_000
    levels = [float(limit) for limit in limits]
    states = [KeyState() for _ in KEYS]
    used: Counter[str] = Counter()
    refused = 0
    total_rate = sum(limits) / window_ms
    interval = 1 / (0.8 * total_rate)
    now = float(NOW)
    last = now
    for number in range(3_000):
        now = NOW + number * interval
        for index, limit in enumerate(limits):
            levels[index] = min(limit, levels[index] + (now - last) * limit / window_ms)
        last = now
        index = choose(KEYS, _pool(*states), number % 3, set(), now, None)
        assert index is not None
        mark = sending(states[index], NOW)
        if levels[index] >= 1:
            levels[index] -= 1
            used[KEYS[index]] += 1
        else:
            refused += 1
        missing = limits[index] - levels[index]
        reset = f"{missing * window_ms / limits[index]:.3f}ms"
        observe(
            states[index], "openai", _openai(limits[index], int(levels[index]), reset), now, mark
        )
    assert refused == 0
    shares = [used[key] / sum(used.values()) for key in KEYS]
    assert shares == pytest.approx(expected, abs=0.03)


def test_stale_counts_weigh_keys_by_their_limits() -> None:
    """Counts read long ago (refilled whole since) still weigh each key by its limit, so an
    isolate that rarely sees a key does not give a small one an equal share."""
    states = [KeyState() for _ in KEYS]
    for state, limit in zip(states, (300, 100, 100), strict=True):
        observe(state, "openai", _openai(limit, limit - 1, "1s"), NOW, sending(state, NOW))
    picks = Counter(
        KEYS[choose(KEYS, _pool(*states), n % 3, set(), NOW + 3_600_000, None) or 0]
        for n in range(500)
    )
    assert picks["a"] == pytest.approx(300, abs=2)
    assert picks["b"] == pytest.approx(100, abs=2)


def test_contention_halves_the_share_down_to_a_floor() -> None:
    """Each 429 from a key whose count was known halves the isolate's share of its refill, to a
    floor; a key never read is not contended."""
    unknown = KeyState()
    contended(unknown)
    assert unknown.share == 1
    state = KeyState()
    observe(state, "openai", _openai(8, 0, "1s"), NOW, sending(state, NOW))
    assert stated_until(state, NOW) == NOW + 125
    contended(state)
    assert stated_until(state, NOW) == NOW + 250
    for _ in range(40):
        contended(state)
    assert state.share == SHARE_FLOOR
    assert stated_until(state, NOW) == NOW + 125 / SHARE_FLOOR


def test_exhausted_tells_the_providers_time_not_the_share() -> None:
    """pool_exhausted's time is when the provider said a key takes a request again, whoever sends
    it, not this isolate's share of it."""
    state = KeyState()
    observe(state, "openai", _openai(8, 0, "1s"), NOW, sending(state, NOW))
    contended(state)
    contended(state)
    assert stated_until(state, NOW) == NOW + 500
    assert exhausted_until(_pool(state), NOW, None) == NOW + 125


def test_a_guess_never_refuses() -> None:
    """A key resting on a guess keeps the pool from being exhausted, and is tried."""
    stated, guessed = KeyState(), KeyState()
    rest(stated, NOW + 5_000, True)
    rest(guessed, NOW + 10_000, False)
    assert exhausted_until(_pool(stated, guessed), NOW, None) is None
    assert choose(("a", "b"), _pool(stated, guessed), 0, set(), NOW, None) == 1
    assert exhausted_until(_pool(stated), NOW, None) == NOW + 5_000


def test_models_per_key_are_bounded_and_busy_models_stay() -> None:
    """A key keeps at most MODELS_PER_KEY model states: new names beyond it share `others`
    while every kept model is in use, and take the place of the least recently used idle one
    (nothing ahead) once there is one; a model resting on a stated time is never pushed out."""
    key = PoolKey()
    bound = key_limits.MODELS_PER_KEY
    resting = model_state(key, "resting", NOW)
    rest(resting, NOW + 10 * key_limits.MODEL_IDLE_MS, True)
    for number in range(bound - 1):
        sending(model_state(key, f"model-{number}", NOW), NOW + number)
    for number in range(1_000):
        assert model_state(key, f"flood-{number}", NOW + 1_000) is key.others
    assert len(key.models) == bound
    later = NOW + key_limits.MODEL_IDLE_MS + 5
    fresh = model_state(key, "fresh", later)
    assert fresh is not key.others and len(key.models) == bound
    assert "model-0" not in key.models and "model-1" in key.models
    assert key.models["resting"] is resting
    assert key_stated_until(key, model_state(key, "resting", later), later) > later


@pytest.mark.parametrize(
    ("wait", "expected"),
    [(0.2, (1, 1)), (1, (1, 1)), (999.5, (1, 1_000)), (1_000, (1, 1_000)), (1_001, (2, 1_001))],
)
def test_pool_exhausted_wait_rounds_up(wait: float, expected: tuple[int, int]) -> None:
    """Retry-After is whole seconds rounded up, retry-after-ms whole ms rounded up, never 0."""
    assert pool_exhausted_wait(NOW + wait, NOW) == expected


@pytest.mark.parametrize(
    ("message", "own"),
    [
        (
            "Request too large for gpt-4o in organization org-x on tokens per min (TPM): "
            "Limit 30000, Requested 32042. The input or output tokens must be reduced.",
            True,
        ),
        (
            "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): "
            "Limit 30000, Used 29000, Requested 2000. Please try again in 2s.",
            False,
        ),
        ("Rate limit reached for Request too large for x: Limit 1, Requested 2", False),
        ("Request too large", False),
    ],
)
def test_request_too_large_is_read_from_the_start(message: str, own: bool) -> None:
    """Only a message that starts as OpenAI's 'Request too large' one is the request's fault: a
    model name (the client's) inside a rate limit's message cannot make it one."""
    assert rate_limit_headers.request_too_large(429, {"message": message}) is own
    assert not rate_limit_headers.request_too_large(400, {"message": message})


def run_promise(promise: dict[str, Any]) -> list[object]:
    """Run one of `PROMISES` on the model's functions; returns what each step gave."""
    pool = [PoolKey() for _ in range(promise["keys"])]
    names = tuple(f"k{index}" for index in range(promise["keys"]))
    marks: dict[str, int] = {}
    results: list[object] = []
    for step in promise["steps"]:
        model = step.get("model")
        now = PROMISE_NOW + step.get("now", 0)
        state = model_state(pool[step.get("key", 0)], model, now)
        op = step["op"]
        result: object = None
        if op == "send":
            marks[step["as"]] = sending(state, now)
        elif op == "observe":
            style = step.get("style", "openai")
            result = observe(state, style, step["headers"], now, marks[step["mark"]])
        elif op == "contended":
            contended(state)
        elif op == "rest":
            rest(state, PROMISE_NOW + step["until"], step["stated"])
        elif op == "stated_until":
            result = max(0.0, key_stated_until(pool[step["key"]], state, now) - PROMISE_NOW)
        elif op == "choose":
            result = choose(names, pool, 0, set(), now, model)
        elif op == "exhausted":
            until = exhausted_until(pool, now, model)
            result = None if until is None else until - PROMISE_NOW
        results.append(result)
    return results


@pytest.mark.parametrize("promise", PROMISES, ids=[promise["name"] for promise in PROMISES])
def test_model_keeps_the_pools_promises(promise: dict[str, Any]) -> None:
    """Each promise of the shared table holds on the model's functions."""
    assert run_promise(promise) == expected_results(promise)


def test_a_key_refused_on_every_model_it_is_asked_rests_whole() -> None:
    """One model refused rests the key for that model; a second, while the key served none,
    rests it whole; a key that serves some model is refused per model only."""
    key = PoolKey()
    refuse_model(key, model_state(key, "a", NOW), NOW + 900_000, NOW)
    assert key_stated_until(key, model_state(key, "b", NOW), NOW) == 0
    assert key_limits.guessed_until(key.whole) == 0
    refuse_model(key, model_state(key, "b", NOW), NOW + 900_000, NOW)
    assert key_limits.guessed_until(key.whole) == NOW + 900_000
    serving = PoolKey()
    served(serving, model_state(serving, "c", NOW), NOW)
    refuse_model(serving, model_state(serving, "a", NOW + 1), NOW + 900_000, NOW + 1)
    refuse_model(serving, model_state(serving, "b", NOW + 1), NOW + 900_000, NOW + 1)
    assert key_limits.guessed_until(serving.whole) == 0
