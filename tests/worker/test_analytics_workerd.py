"""The Worker's Analytics Engine data points in workerd: the shared vectors, and the points real
requests leave, collected the way workerd delivers them (a loopback service the binding names)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from infra.cli.local_analytics import LocalAnalytics, collecting
from infra.settings import load
from infra.worker.analytics import BLOBS, DOUBLES
from infra.worker.config import UpstreamResponse
from infra.worker.render import render_worker
from tests.cloudflare_fake import key_id
from tests.upstream import ACCOUNT_ID, FakeGateway, _openai_completion
from tests.vectors.analytics_cases import BODIES, LONG, OUTCOMES, POINTS, body_of, long_event
from tests.worker.conftest import AUTH, OPENAI_KEYS, SECRETS, TOKEN, MakeWorker, leaked

_HARNESS = """
export default {
  async fetch(request) {
    const { outcomes, points, bodies } = await request.json();
    const encoder = new TextEncoder();
    return Response.json({
      models: bodies.map((body) => topLevelModel(encoder.encode(body))),
      outcomes: outcomes.map((c) => outcomeOf(c.status, c.code, c.gateway)),
      points: points.map((e) =>
        dataPoint(e.kind, e, e.outcome, e.status, e.attempts, e.firstByteMs)),
    });
  },
};
"""
CONTENT = "Say hello to the secret garden"
"""A message's content: it must appear in no data point."""
SETTLE_S = 5.0


def test_worker_meets_the_vectors() -> None:
    """The Worker's outcomes and data points are the vectors' (the model meets them too)."""
    from infra.cli.workerd import serve_worker

    settings, _ = load({"accountId": ACCOUNT_ID, "providerKeys": {"openai": ["x"]}}, "test")
    source = render_worker(settings).replace("export default {", "const aigwWorker = {", 1)
    events = [case["event"] for case in POINTS] + [long_event()]
    with serve_worker(source + _HARNESS, {}) as worker:
        cases = {"outcomes": OUTCOMES, "points": events, "bodies": [body_of(b) for b in BODIES]}
        read = httpx.post(worker.url, json=cases, timeout=30).json()
    assert read["outcomes"] == [case["outcome"] for case in OUTCOMES]
    assert read["models"] == [case["model"] for case in BODIES]
    assert read["points"][:-1] == [case["point"] for case in POINTS]
    assert read["points"][-1]["blobs"][BLOBS.index("model")] == LONG["character"] * LONG["kept"]


@pytest.fixture
def sink() -> Iterator[LocalAnalytics]:
    """A loopback collector of the Worker's data points."""
    with collecting("aigw_test") as collector:
        yield collector


def rows(sink: LocalAnalytics, count: int) -> list[dict[str, Any]]:
    """The first `count` points, as named fields, once workerd has delivered them: attempts by
    number before requests, requests by status. workerd posts each point on its own, so they may
    arrive in any order."""
    deadline = time.monotonic() + SETTLE_S
    while len(sink.snapshot()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    received = sink.snapshot()
    assert len(received) == count, received
    points = [named(row) for row in received]
    return sorted(points, key=lambda p: (p["kind"] == "request", p["attempts"], p["status"]))


def named(row: dict[str, Any]) -> dict[str, Any]:
    """A row's columns by the names analytics.py gives them."""
    fields: dict[str, Any] = {"index": row["index1"]}
    fields |= {name: row[f"blob{number}"] for number, name in enumerate(BLOBS, 1)}
    fields |= {name: row[f"double{number}"] for number, name in enumerate(DOUBLES, 1)}
    return fields


def completion() -> UpstreamResponse:
    body = json.dumps(_openai_completion("gpt-4o-mini")).encode()
    return UpstreamResponse(200, {"content-type": "application/json"}, body)


def refusal(status: int) -> UpstreamResponse:
    body = json.dumps({"error": {"message": "no", "type": "x", "code": "y"}}).encode()
    return UpstreamResponse(status, {"content-type": "application/json"}, body)


def chat(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0, timeout=30)


def test_an_answered_request_is_one_point(
    make_worker: MakeWorker, upstream: FakeGateway, sink: LocalAnalytics
) -> None:
    """One request, one point: the client, provider, model, key, outcome and timing, and no key,
    token or content anywhere in it."""
    worker = make_worker(analytics=sink)
    chat(worker.url).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": CONTENT}]
    )
    [point] = rows(sink, 1)
    sent = upstream.requests[0].key
    assert sent is not None
    assert point | {"firstByteMs": 0} == {
        "index": f"openai/{key_id(sent)}",
        "schema": "aigw.v1",
        "kind": "request",
        "client": "alice",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "keyId": key_id(sent),
        "outcome": "answered",
        "path": "/openai/chat/completions",
        "status": 200.0,
        "attempts": 1.0,
        "firstByteMs": 0,
        "cached": 0.0,
        "upstreamStatus": 200.0,
    }
    assert point["firstByteMs"] >= 0
    dumped = json.dumps(sink.snapshot())
    assert leaked(dumped, SECRETS) == [] and CONTENT not in dumped


def test_each_failed_over_attempt_is_a_point_of_its_own(
    make_worker: MakeWorker, upstream: FakeGateway, sink: LocalAnalytics
) -> None:
    """A key's refusal is counted even when another key answered: the 429 and the 401 each
    leave an attempt point under their key, the answer the request's point."""
    worker = make_worker(provider_keys={"openai": OPENAI_KEYS}, analytics=sink)
    upstream.script(refusal(429), refusal(401), completion())
    chat(worker.url).chat.completions.create(model="gpt-4o-mini", messages=[])
    points = rows(sink, 3)
    keys = [key_id(request.key or "") for request in upstream.requests]
    assert [(p["kind"], p["keyId"], p["outcome"], p["status"], p["attempts"]) for p in points] == [
        ("attempt", keys[0], "provider_rate_limited", 429.0, 1.0),
        ("attempt", keys[1], "provider_refused", 401.0, 2.0),
        ("request", keys[2], "answered", 200.0, 3.0),
    ]
    assert len(set(keys)) == 3
    assert all(p["index"] == f"openai/{p['keyId']}" for p in points)


def test_refusals_the_gateway_never_sees_are_recorded(
    make_worker: MakeWorker, upstream: FakeGateway, sink: LocalAnalytics
) -> None:
    """Requests the Worker answers itself leave a point too: a bad token, a policy refusal
    (with the model it named), an unknown route; none names a key."""
    worker = make_worker(clients={"alice": {"models": ["gpt-4o-mini"]}}, analytics=sink)
    bad = httpx.post(
        f"{worker.url}/v1/chat/completions",
        headers={"authorization": "Bearer tok-test-not-a-client"},
        json={"model": "gpt-4o-mini"},
    )
    refused = httpx.post(
        f"{worker.url}/v1/chat/completions", headers=AUTH, json={"model": "o3-pro", "messages": []}
    )
    unknown = httpx.get(f"{worker.url}/nowhere", headers=AUTH)
    assert (bad.status_code, refused.status_code, unknown.status_code) == (401, 403, 404)
    points = rows(sink, 3)
    assert [(p["client"], p["model"], p["outcome"], p["status"], p["keyId"]) for p in points] == [
        ("", "", "unauthenticated", 401.0, ""),
        ("alice", "o3-pro", "model_not_allowed", 403.0, ""),
        ("", "", "bad_request", 404.0, ""),
    ]
    assert {p["index"] for p in points} == {""}
    assert upstream.requests == []
    assert leaked(json.dumps(sink.snapshot()), SECRETS) == []


def test_every_key_refused_is_one_point_per_attempt(
    make_worker: MakeWorker, upstream: FakeGateway, sink: LocalAnalytics
) -> None:
    """When every key is refused, each attempt is counted under its key and the request's own
    point says the provider refused it (the client got the Worker's own 401)."""
    worker = make_worker(provider_keys={"openai": OPENAI_KEYS[:2]}, analytics=sink)
    upstream.script(refusal(401), refusal(401))
    answer = httpx.post(
        f"{worker.url}/v1/chat/completions", headers=AUTH, json={"model": "gpt-4o-mini"}
    )
    assert answer.status_code == 401
    points = rows(sink, 2)
    assert [(p["kind"], p["outcome"], p["upstreamStatus"]) for p in points] == [
        ("attempt", "provider_refused", 401.0),
        ("request", "provider_refused", 401.0),
    ]
    assert {p["keyId"] for p in points} == {key_id(key) for key in OPENAI_KEYS[:2]}


def test_without_the_binding_nothing_is_written_and_requests_work(
    make_worker: MakeWorker, sink: LocalAnalytics
) -> None:
    """With analytics off (no binding) the Worker answers as before and writes nothing."""
    worker = make_worker()
    answer = chat(worker.url).chat.completions.create(model="gpt-4o-mini", messages=[])
    assert answer.choices[0].message.content
    time.sleep(0.2)
    assert sink.snapshot() == []


_THROWING_BINDING = """
export default {
  async fetch(request, env) {
    // A dataset that refuses every point, as the runtime does a point over its limits.
    const dataset = { writeDataPoint() { throw new TypeError("writeDataPoint(): refused"); } };
    return aigwWorker.fetch(request, { ...env, ANALYTICS: dataset });
  },
};
"""


def test_a_refused_data_point_never_reaches_the_request(upstream: FakeGateway) -> None:
    """When writing a point throws, the client still gets its answer, and the Worker only notes
    that a point was not written."""
    from infra.cli.workerd import serve_worker

    raw = {"accountId": ACCOUNT_ID, "providerKeys": {"openai": list(OPENAI_KEYS)}}
    settings, _ = load(raw | {"clientTokens": {"alice": TOKEN}}, "test")
    source = render_worker(settings, gateway_url=upstream.url)
    source = source.replace("export default {", "const aigwWorker = {", 1) + _THROWING_BINDING
    bindings = {"OPENAI_API_KEYS": ",".join(OPENAI_KEYS), "CLIENT_TOKENS": f"alice:{TOKEN}"}
    upstream.script(refusal(429), completion())
    with serve_worker(source, bindings) as worker:
        answer = chat(worker.url).chat.completions.create(model="gpt-4o-mini", messages=[])
        refused = httpx.post(f"{worker.url}/v1/chat/completions", json={"model": "x"})
        log = worker.log_path.read_text(encoding="utf-8", errors="replace")
    assert answer.choices[0].message.content and refused.status_code == 401
    assert "a data point was not written (TypeError)" in log
