"""AI Gateway's own refusals and the providers' verdicts through the rendered Worker in workerd."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import httpx
import openai
import pytest

from infra.cli.workerd import RunningWorker, serve_worker
from infra.settings import load
from infra.worker.render import render_worker
from infra.worker.verdicts import next_quota_day_ms
from tests.upstream import ACCOUNT_ID, FakeGateway, gateway_refusal
from tests.worker.conftest import AUTH, OPENAI_KEYS, SECRETS, TOKEN, leaked

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]


def _chat(worker: RunningWorker) -> httpx.Response:
    body = {"model": "gpt-test", "messages": MESSAGES}
    return httpx.post(worker.url + CHAT, json=body, headers=AUTH, timeout=30)


@pytest.mark.parametrize(
    ("code", "status", "error_code"),
    [
        (2003, 429, "gateway_rate_limited"),
        (2045, 429, "budget_exceeded"),
        (2009, 502, "gateway_auth_failed"),
        (2021, 402, None),
    ],
)
def test_gateway_refusal_is_one_attempt_and_rests_no_key(
    worker: RunningWorker, upstream: FakeGateway, code: int, status: int, error_code: str | None
) -> None:
    """Each gateway refusal costs one upstream attempt, and the requests after it still use every
    key in turn: no key was rested for the gateway's refusal."""
    upstream.refusal = code
    refused = [_chat(worker) for _ in OPENAI_KEYS]
    assert [answer.status_code for answer in refused] == [status] * len(OPENAI_KEYS)
    if error_code is None:
        # Any other refusal reaches the client as the gateway sent it.
        assert refused[0].content == gateway_refusal(code)[1]
    else:
        assert refused[0].json()["error"]["code"] == error_code
    assert Counter(request.key for request in upstream.requests) == dict.fromkeys(OPENAI_KEYS, 1)
    upstream.reset()
    upstream.refusal = None
    assert [_chat(worker).status_code for _ in OPENAI_KEYS] == [200] * len(OPENAI_KEYS)
    assert Counter(request.key for request in upstream.requests) == dict.fromkeys(OPENAI_KEYS, 1)


def test_openai_sdk_reads_the_gateway_rate_limit(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """The official openai SDK raises a RateLimitError with the Worker's code and message, and the
    gateway's Retry-After; no key or token is in it."""
    upstream.refusal = 2003
    upstream.retry_after = "17"
    client = openai.OpenAI(base_url=worker.url + "/v1", api_key=TOKEN, max_retries=0, timeout=30)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    error = raised.value
    assert error.status_code == 429
    assert error.code == "gateway_rate_limited"
    assert "AI Gateway's own rate limit" in error.message
    assert error.response.headers["retry-after"] == "17"
    assert len(upstream.requests) == 1
    assert leaked(str(error) + error.response.text, SECRETS) == []


def test_openai_sdk_reads_the_refused_gateway_token(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """A refused GATEWAY_TOKEN reaches an openai SDK user as a 502 sending the operator to the
    gateway token (never quoting it), not to the keys."""
    upstream.refusal = 2009
    client = openai.OpenAI(base_url=worker.url + "/v1", api_key=TOKEN, max_retries=0, timeout=30)
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    error = raised.value
    assert error.status_code == 502
    assert error.code == "gateway_auth_failed"
    assert "GATEWAY_TOKEN" in error.message
    assert "revoked" not in error.message
    assert len(upstream.requests) == 1
    assert leaked(str(error) + error.response.text, SECRETS) == []


def test_openai_sdk_names_the_client_over_budget(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """A client over a gateway spend limit reads, through the openai SDK, that it is over budget,
    by name."""
    upstream.refusal = 2045
    client = openai.OpenAI(base_url=worker.url + "/v1", api_key=TOKEN, max_retries=0, timeout=30)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert raised.value.code == "budget_exceeded"
    assert "client alice " in raised.value.message
    assert leaked(str(raised.value), SECRETS) == []


# Instants around Pacific time's changes and day ends, as UTC ISO strings.
_INSTANTS = [
    "2026-03-07T20:00:00",  # Saturday noon PST, before the spring change
    "2026-03-08T07:59:59",  # 23:59:59 PST, the last second before midnight
    "2026-03-08T08:00:00",  # midnight PST exactly: the next one is a day on
    "2026-03-08T10:30:00",  # 03:30 PDT, just after the change
    "2026-03-08T19:00:00",  # Sunday noon PDT
    "2026-06-16T03:00:00",  # 20:00 PDT, a UTC day ahead of Pacific
    "2026-10-31T19:00:00",  # Saturday noon PDT, before the autumn change
    "2026-11-01T08:30:00",  # 01:30 PST, the second 01:30 of that night
    "2026-11-01T20:00:00",  # Sunday noon PST
    "2026-12-31T23:59:59",  # New Year's Eve 15:59 PST
    "2027-01-01T08:00:01",  # just after Pacific midnight of New Year
]


def test_quota_day_in_workerd_agrees_with_the_model() -> None:
    """The Worker's next Pacific midnight (Intl in workerd) is the model's (zoneinfo) at every
    instant tried, across both daylight-saving changes of a year."""
    settings, _ = load({"accountId": ACCOUNT_ID, "providerKeys": {"openai": ["x"]}}, "test")
    source = render_worker(settings)
    # A test-only entry point that calls the rendered Worker's own function; never rendered.
    source = source.replace("export default {", "const worker = {", 1) + (
        "\nexport default { async fetch(request) {\n"
        "  const instants = JSON.parse(new URL(request.url).searchParams.get('t'));\n"
        "  return Response.json(instants.map((instant) => nextQuotaDay(instant)));\n"
        "} };\n"
    )
    instants = [
        int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000) + extra
        for text in _INSTANTS
        for extra in (0, 999)
    ]
    with serve_worker(source, {}) as served:
        answer = httpx.get(served.url, params={"t": json.dumps(instants)}, timeout=30)
    assert answer.json() == [next_quota_day_ms(instant) for instant in instants]
