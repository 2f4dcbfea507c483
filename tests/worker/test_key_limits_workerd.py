"""The key pool's limits in the rendered Worker in workerd: its header parsers against the model's,
and the official openai SDK as a client of a pool whose keys are at their limits."""

from __future__ import annotations

import json
import threading
from collections import Counter

import httpx
import openai
import pytest

from bench.pool_keys import Tier
from infra.cli.workerd import serve_worker
from infra.settings import load
from infra.worker import rate_limit_headers
from infra.worker.config import UpstreamResponse
from infra.worker.render import render_worker
from tests.upstream import ACCOUNT_ID, FakeGateway, _openai_completion
from tests.vectors.body_models import BODY_MODELS
from tests.vectors.header_values import COUNTS, DURATIONS, RETRY_AFTER_MS, TIMESTAMPS
from tests.vectors.pool_promises import NOW as PROMISE_NOW
from tests.vectors.pool_promises import PROMISES, expected_results
from tests.worker.conftest import TOKEN, MakeWorker

MESSAGES = [{"role": "user", "content": "Say hello"}]
TWO_KEYS = {"openai": ("sk-test-a", "sk-test-b")}

_PARSERS_HARNESS = """
const PARSERS = {
  duration: parseDurationMs,
  count: parseCount,
  timestamp: parseTimestampMs,
  retryAfterMs: retryAfterMsValue,
};
export default {
  async fetch(request) {
    const cases = await request.json();
    return Response.json(cases.map(([parser, value]) => PARSERS[parser](value)));
  },
};
"""


def test_worker_parses_headers_as_the_model_does() -> None:
    """Every value of the shared table reads the same in the Worker as in the model (the model's
    own reading of it is checked against the table in tests/unit/test_key_limits.py)."""
    settings, _ = load({"accountId": ACCOUNT_ID, "providerKeys": {"openai": ["x"]}}, "test")
    source = render_worker(settings).replace("export default {", "const aigwWorker = {", 1)
    tables = {
        "duration": (DURATIONS, rate_limit_headers.parse_duration_ms),
        "count": (COUNTS, rate_limit_headers.parse_count),
        "timestamp": (TIMESTAMPS, rate_limit_headers.parse_timestamp_ms),
        "retryAfterMs": (RETRY_AFTER_MS, rate_limit_headers.retry_after_ms_value),
    }
    cases = [(name, value) for name, (table, _) in tables.items() for value, _ in table]
    with serve_worker(source + _PARSERS_HARNESS, {}) as worker:
        read = httpx.post(worker.url, json=cases, timeout=30).json()
    expected = [tables[name][1](value) for name, value in cases]
    assert list(zip(cases, read, strict=True)) == list(zip(cases, expected, strict=True))


def _limited(limit: int, remaining: int, reset: str) -> UpstreamResponse:
    """A completion as OpenAI answers it, with the key's request count."""
    headers = {
        "content-type": "application/json",
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset,
    }
    return UpstreamResponse(200, headers, json.dumps(_openai_completion("gpt-test")).encode())


def _client(worker_url: str, retries: int, sent: list[httpx.Request]) -> openai.OpenAI:
    """The SDK, counting each HTTP request it sends to the Worker."""
    http = httpx.Client(event_hooks={"request": [sent.append]})
    return openai.OpenAI(
        base_url=worker_url + "/v1",
        api_key=TOKEN,
        max_retries=retries,
        timeout=30,
        http_client=http,
    )


def test_sdk_retry_waits_as_long_as_the_pool_says(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Both keys answered at 0 left (the next request in 4 s): the Worker sends nothing upstream
    and answers pool_exhausted with retry-after-ms, which the SDK's own retry honours: it comes
    back once, when a key takes a request again, and gets its completion. No upstream 429."""
    worker = make_worker(provider_keys=TWO_KEYS)
    upstream.script(_limited(1, 0, "4s"), _limited(1, 0, "4s"))
    sent: list[httpx.Request] = []
    learning = _client(worker.url, 0, sent)
    for _ in range(2):
        learning.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
    assert sorted(request.key or "" for request in upstream.requests) == ["sk-test-a", "sk-test-b"]
    retried: list[httpx.Request] = []
    completion = _client(worker.url, 2, retried).chat.completions.create(
        model="gpt-test",
        messages=MESSAGES,  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
    )
    assert completion.choices[0].message.content == "Hello from the fake gateway."
    # One refusal, one retry when the Worker said: not the SDK's own shorter backoff, which
    # would have been refused again.
    assert len(retried) == 2
    assert len(upstream.requests) == 3
    assert all(
        request.json() == {"model": "gpt-test", "messages": MESSAGES}
        for request in upstream.requests
    )


def test_pool_exhausted_answer_as_the_sdk_sees_it(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Without retries the SDK raises RateLimitError: code pool_exhausted, a Retry-After in whole
    seconds no earlier than retry-after-ms, and nothing was sent upstream."""
    worker = make_worker(provider_keys={"openai": ("sk-test-a",)})
    upstream.script(_limited(2, 0, "2m0s"))
    client = _client(worker.url, 0, [])
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
    answer = refused.value.response
    assert refused.value.code == "pool_exhausted"
    assert answer.headers["retry-after"] == "60"
    assert 59_000 < int(answer.headers["retry-after-ms"]) <= 60_000
    assert len(upstream.requests) == 1


def test_a_key_at_zero_gets_no_request_before_it_refills(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """A 200 saying the key has 0 of 10 left (whole again in 60 s: the next request in 6 s) keeps
    the next requests off it, before any 429 could: they go to the other keys."""
    worker = make_worker()
    upstream.script(_limited(10, 0, "1m0s"))
    client = _client(worker.url, 0, [])
    for _ in range(6):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
    first, *rest = (request.key for request in upstream.requests)
    assert len(rest) == 5
    assert first not in rest


def test_request_too_large_reaches_the_sdk_as_openai_sent_it(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """OpenAI's 'Request too large' 429 is the request's own: the SDK gets OpenAI's message, no
    other key was tried, and the key does not rest (the next request goes upstream)."""
    worker = make_worker()
    message = (
        "Request too large for gpt-4o in organization org-test on tokens per min (TPM): "
        "Limit 30000, Requested 32042. The input or output tokens must be reduced in order to "
        "run successfully."
    )
    body = {
        "error": {
            "message": message,
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    headers = {"content-type": "application/json", "retry-after": "30"}
    upstream.script(UpstreamResponse(429, headers, json.dumps(body).encode()))
    client = _client(worker.url, 0, [])
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
    assert refused.value.message.endswith(message)
    assert len(upstream.requests) == 1
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
    assert len({request.key for request in upstream.requests}) == 3


_PROMISES_HARNESS = """
function runPromise(promise, origin) {
  const pool = Array.from({ length: promise.keys }, () => newPoolKey());
  const names = pool.map((_, index) => `k${index}`);
  const marks = new Map();
  return promise.steps.map((step) => {
    const model = step.model ?? null;
    const now = origin + (step.now ?? 0);
    const state = modelState(pool[step.key ?? 0], model, now);
    switch (step.op) {
      case "send":
        marks.set(step.as, sending(state, now));
        return null;
      case "observe":
        return observe(state, step.style ?? "openai", new Headers(step.headers), now,
          marks.get(step.mark));
      case "contended":
        contended(state);
        return null;
      case "rest":
        restKey(state, origin + step.until, step.stated);
        return null;
      case "stated_until":
        return Math.max(0, keyStatedUntil(pool[step.key], state, now, 0) - origin);
      case "choose": {
        const index = chooseKey(names, pool, 0, new Set(), now, model);
        return index === -1 ? null : index;
      }
      case "exhausted": {
        const until = exhaustedUntil(pool, now, model);
        return until === null ? null : until - origin;
      }
    }
    throw new Error(`unknown step ${step.op}`);
  });
}
export default {
  async fetch(request) {
    const { promises, origin } = await request.json();
    return Response.json(promises.map((promise) => runPromise(promise, origin)));
  },
};
"""


def test_worker_keeps_the_pools_promises() -> None:
    """Each promise of the shared table (tests/vectors/pool_promises.py) holds on the rendered
    Worker's own functions, per key and per model, as it does on the model's."""
    settings, _ = load({"accountId": ACCOUNT_ID, "providerKeys": {"openai": ["x"]}}, "test")
    source = render_worker(settings).replace("export default {", "const aigwWorker = {", 1)
    with serve_worker(source + _PROMISES_HARNESS, {}) as worker:
        answer = httpx.post(
            worker.url, json={"promises": PROMISES, "origin": PROMISE_NOW}, timeout=30
        )
    results = answer.json()
    for promise, seen in zip(PROMISES, results, strict=True):
        assert seen == expected_results(promise), promise["name"]


_BODY_MODEL_HARNESS = """
export default {
  async fetch(request) {
    const bodies = await request.json();
    return Response.json(bodies.map((hex) => topLevelModel(Uint8Array.from(
      hex.match(/../g) ?? [], (pair) => parseInt(pair, 16)))));
  },
};
"""


def test_worker_reads_the_model_as_the_model_does() -> None:
    """The Worker's routing read finds the same model as the model's in every body of the table."""
    settings, _ = load({"accountId": ACCOUNT_ID, "providerKeys": {"openai": ["x"]}}, "test")
    source = render_worker(settings).replace("export default {", "const aigwWorker = {", 1)
    with serve_worker(source + _BODY_MODEL_HARNESS, {}) as worker:
        read = httpx.post(worker.url, json=[body.hex() for body, _ in BODY_MODELS], timeout=30)
    assert read.json() == [model for _, model in BODY_MODELS]


def test_a_model_far_over_its_limit_costs_another_model_nothing(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Two clients of the official SDK at once on three keys whose limits are per model, as
    OpenAI's are: one sends a small model far over its limit (1 request per 4 s per key), the other
    a main model within its own (100 per 10 s per key). Every main-model request is answered; the
    small model's client gets pool_exhausted from the Worker for most of its requests, and no
    upstream 429 is ever about the main model."""
    upstream.model_tiers = {"gpt-main": Tier(100, 10.0), "gpt-small": Tier(1, 4.0)}
    worker = make_worker()
    outcomes: dict[str, Counter[str]] = {"gpt-main": Counter(), "gpt-small": Counter()}

    def client(model: str) -> None:
        sdk = _client(worker.url, 0, [])
        for _ in range(24):
            try:
                sdk.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
                outcomes[model]["answered"] += 1
            except openai.RateLimitError as refused:
                outcomes[model][str(refused.code)] += 1

    threads = [threading.Thread(target=client, args=(model,)) for model in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes["gpt-main"] == Counter({"answered": 24})
    assert outcomes["gpt-small"]["answered"] <= 6
    assert outcomes["gpt-small"]["pool_exhausted"] >= 15
    main_refused = [
        bucket.refused
        for (_, model), bucket in upstream.model_buckets.items()
        if model == "gpt-main"
    ]
    assert main_refused == [0, 0, 0]
