"""Key failover, upstream failures and client disconnects through the rendered Worker in workerd."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager

import httpx
import pytest

from infra.cli.workerd import RunningWorker
from infra.worker.verdicts import SERVER_ERROR_FAILOVER_MS
from tests.upstream import Behaviour, FakeGateway, revoked_message
from tests.worker.conftest import AUTH, OPENAI_KEYS, MakeWorker

CHAT = "/v1/chat/completions"


def _chat(worker: RunningWorker, **extra: object) -> httpx.Response:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(worker.url + CHAT, json=body, headers=AUTH, timeout=30)


def _stream(worker: RunningWorker) -> AbstractContextManager[httpx.Response]:
    """A streamed chat completion through the Worker, to read inside a `with` block."""
    body = {"model": "gpt-test", "messages": [], "stream": True}
    return httpx.stream("POST", worker.url + CHAT, json=body, headers=AUTH, timeout=30)


def _assert_whole_stream(worker: RunningWorker, chunks: int) -> None:
    """A streamed chat completion arrives with all its `chunks` deltas, the stop and `[DONE]`."""
    with _stream(worker) as response:
        body = response.read()
    assert response.status_code == 200
    assert body.count(b"data: ") == chunks + 2
    assert body.rstrip().endswith(b"data: [DONE]")


@pytest.mark.parametrize(
    ("behaviour", "cools_down"),
    [("rate_limited", True), ("revoked", True), ("server_error", False), ("drop", False)],
)
def test_failing_key_is_absorbed_by_another(
    worker: RunningWorker, upstream: FakeGateway, behaviour: Behaviour, cools_down: bool
) -> None:
    """Requests succeed while one key fails; a limited or revoked key is then left to cool."""
    upstream.behaviours[OPENAI_KEYS[0]] = behaviour
    # Consecutive requests start at consecutive keys, so one of them starts at the failing key.
    answers = [_chat(worker, n=number) for number in range(2 * len(OPENAI_KEYS))]
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    tried = upstream.key_counts()[OPENAI_KEYS[0]]
    if cools_down:
        assert tried == 1
    else:
        assert tried >= 1
    requests = upstream.requests
    failed = next(i for i, request in enumerate(requests) if request.key == OPENAI_KEYS[0])
    retry = requests[failed + 1]
    # The retry carries the same body with a different key.
    assert retry.key != OPENAI_KEYS[0]
    assert retry.body == requests[failed].body


def test_all_keys_revoked_yields_the_proxys_own_401(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """When every key is refused, the client gets the Worker's 401, with no key fragment in it."""
    for key in OPENAI_KEYS:
        upstream.behaviours[key] = "revoked"
    answer = _chat(worker)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    for key in OPENAI_KEYS:
        fragment = revoked_message(key).split(": ")[1].split(".")[0]
        assert fragment not in answer.text
        assert key not in answer.text
    assert "Incorrect API key" not in answer.text
    # Three attempts (maxAttempts), each with its own key.
    assert sorted(request.key or "" for request in upstream.requests) == sorted(OPENAI_KEYS)


def test_all_keys_rate_limited_passes_on_429_and_retry_after(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """With every key limited the client gets the upstream's 429 and Retry-After; the next request
    is not sent upstream at all: every key rests on the time its 429 stated, so the Worker
    answers `pool_exhausted` with a Retry-After no later than that time."""
    upstream.retry_after = "7"
    for key in OPENAI_KEYS:
        upstream.behaviours[key] = "rate_limited"
    first = _chat(worker)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "7"
    assert first.json()["error"]["message"]
    tried = len(upstream.requests)
    assert tried == len(OPENAI_KEYS)
    second = _chat(worker)
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "pool_exhausted"
    assert second.headers["retry-after"] == "7"
    assert 6_000 < int(second.headers["retry-after-ms"]) <= 7_000
    assert len(upstream.requests) == tried


def test_keys_resting_on_a_guess_are_still_tried(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """429s that state no time rest their keys on a guess of the Worker's own: with every key so
    rested, the next request is still sent upstream (the Worker never refuses on a guess)."""
    upstream.retry_after = "soon"
    for key in OPENAI_KEYS:
        upstream.behaviours[key] = "rate_limited"
    assert _chat(worker).status_code == 429
    tried = len(upstream.requests)
    second = _chat(worker)
    assert second.status_code == 429
    assert second.headers["retry-after"] == "soon"
    assert len(upstream.requests) > tried


def test_upstream_unreachable_is_502(make_worker: MakeWorker, upstream: FakeGateway) -> None:
    """Every attempt failing to connect ends in the Worker's own 502."""
    for key in OPENAI_KEYS:
        upstream.behaviours[key] = "drop"
    worker = make_worker()
    answer = _chat(worker)
    assert answer.status_code == 502
    assert answer.json()["error"]["message"]
    assert len(upstream.requests) == len(OPENAI_KEYS)


def test_no_failover_once_the_stream_has_started(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """A stream cut after its first chunk is not retried: bytes already reached the client."""
    for key in OPENAI_KEYS:
        upstream.behaviours[key] = "cut"
    received = b""
    # The error comes while reading the body, after the 200.
    with (
        pytest.raises(httpx.HTTPError),
        _stream(worker) as response,
    ):
        assert response.status_code == 200
        for data in response.iter_bytes():
            received += data
    assert b"tok0" in received
    assert b"[DONE]" not in received
    assert len(upstream.requests) == 1


def test_client_disconnect_mid_stream_leaves_the_worker_healthy(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """A client that hangs up mid-stream does not wedge the Worker: the next requests succeed."""
    upstream.stream_chunks = 50
    hold = upstream.hold_next_stream(after=1)
    with _stream(worker) as response:
        first = next(response.iter_lines())
        assert first.startswith("data: ")
        assert json.loads(first[6:])["choices"][0]["delta"]["content"] == "tok0 "
    # Leaving the block closed the connection mid-stream; let the upstream try to go on.
    hold.release.set()
    assert _chat(worker).status_code == 200
    _assert_whole_stream(worker, 50)
    assert httpx.get(worker.url + "/healthz").status_code == 200


def test_gateway_without_headers_in_time_is_504(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """A gateway that does not answer within the timeout gets the Worker's own 504."""
    upstream.slow_seconds = 5
    for key in OPENAI_KEYS:
        upstream.behaviours[key] = "slow"
    worker = make_worker(upstream_timeout_ms=300)
    answer = _chat(worker)
    assert answer.status_code == 504
    assert answer.json()["error"]["message"]
    assert len(upstream.requests) == 1


def test_stream_longer_than_the_timeout_is_not_cut(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """The timeout bounds the wait for headers only: a long stream after them arrives whole."""
    upstream.stream_chunks = 8
    upstream.chunk_delay = 0.1  # 8 chunks of 0.1 s: well past the 300 ms timeout
    worker = make_worker(upstream_timeout_ms=300)
    _assert_whole_stream(worker, 8)


def test_a_slow_5xx_is_not_bought_again_with_another_key(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """A 5xx that came after the failover bound (5 s into the request) may follow work the
    provider bills: it goes to the client as it came, and no other key is asked. A fast 5xx from
    every key is tried on each of them (nothing was worked on)."""
    for key in OPENAI_KEYS:
        upstream.behaviours[key] = "server_error"
    assert _chat(worker).status_code == 503
    assert len(upstream.requests) == len(OPENAI_KEYS)
    upstream.slow_seconds = SERVER_ERROR_FAILOVER_MS / 1000 + 0.5
    for key in OPENAI_KEYS:
        upstream.behaviours[key] = "slow_server_error"
    slow = _chat(worker)
    assert slow.status_code == 503
    assert slow.json()["error"]["message"] == "upstream overloaded"
    assert len(upstream.requests) == len(OPENAI_KEYS) + 1
