"""A client with a budget but no `models` cannot reach what AI Gateway does not count (issue 25).

Through the official SDKs, the calls they have for it: minting a Realtime client secret the client
would then use with OpenAI directly, creating OpenAI and Anthropic batches that run after the
request the gateway logged, and a background Response (created queued, generated later). Each is
refused before anything goes upstream; an inference call of the same client goes through.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import anthropic
import httpx
import openai
import pytest

from infra.cli.workerd import RunningWorker
from tests.upstream import FakeGateway
from tests.worker.conftest import CLIENT_TOKENS, SECRETS, MakeWorker, leaked

ALICE = CLIENT_TOKENS["alice"]
BUDGETS = {"*": {"budget": {"limit": 2, "window": 86400}, "rateLimit": {"limit": 60, "period": 60}}}
"""The `"*"` client of Pulumi.example.yaml: a budget and a rate limit, no models."""


def _openai(worker: RunningWorker) -> openai.OpenAI:
    return openai.OpenAI(base_url=worker.url + "/v1", api_key=ALICE, max_retries=0, timeout=30)


def _anthropic(worker: RunningWorker) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=worker.url + "/anthropic", api_key=ALICE, max_retries=0, timeout=30
    )


def _mint_realtime_secret(worker: RunningWorker) -> object:
    return _openai(worker).realtime.client_secrets.create(
        session={"type": "realtime", "model": "gpt-realtime"}
    )


def _openai_batch(worker: RunningWorker) -> object:
    return _openai(worker).batches.create(
        input_file_id="file-abc", endpoint="/v1/chat/completions", completion_window="24h"
    )


def _anthropic_batch(worker: RunningWorker) -> object:
    request = {
        "custom_id": "one",
        "params": {
            "model": "claude-haiku-4-5",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        },
    }
    return _anthropic(worker).messages.batches.create(requests=[request])  # type: ignore[list-item]


def _background_response(worker: RunningWorker) -> object:
    return _openai(worker).responses.create(model="gpt-4o-mini", input="hi", background=True)


@pytest.mark.parametrize(
    "call",
    [_mint_realtime_secret, _openai_batch, _anthropic_batch, _background_response],
    ids=[
        "realtime-client-secret",
        "openai-batch",
        "anthropic-message-batch",
        "background-response",
    ],
)
def test_budget_client_cannot_reach_uncounted_endpoints(
    make_worker: MakeWorker, upstream: FakeGateway, call: Callable[[RunningWorker], object]
) -> None:
    """The SDK call gets 403 endpoint_not_allowed (PermissionDeniedError) and nothing reaches the
    gateway: the spend limit would never see the work it starts."""
    worker = make_worker(clients=BUDGETS)
    with pytest.raises((openai.PermissionDeniedError, anthropic.PermissionDeniedError)) as raised:
        call(worker)
    body = raised.value.response.content
    assert leaked(body, SECRETS) == []
    assert json.loads(body)["error"]["code"] == "endpoint_not_allowed"
    assert upstream.requests == []


def test_budget_client_still_calls_counted_inference(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """The same client's chat completion and model listing go upstream as before."""
    worker = make_worker(clients=BUDGETS)
    client = _openai(worker)
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content
    client.models.list()
    assert [request.target for request in upstream.requests] == [
        "/openai/chat/completions",
        "/openai/models",
    ]


def test_operator_opens_batches_by_name(make_worker: MakeWorker, upstream: FakeGateway) -> None:
    """`endpoints: ["POST /v1/batches"]` opens OpenAI batches to a budget client; a wildcard
    entry (`"* /v1/*"`) does not open a Realtime client secret."""
    clients = {"alice": {**BUDGETS["*"], "endpoints": ["POST /v1/batches", "* /v1/*"]}}
    worker = make_worker(clients=clients)
    response = httpx.post(
        worker.url + "/v1/batches",
        headers={"authorization": f"Bearer {ALICE}"},
        json={"input_file_id": "file-abc", "endpoint": "/v1/chat/completions"},
        timeout=30,
    )
    assert response.status_code == 200
    with pytest.raises(openai.PermissionDeniedError) as raised:
        _mint_realtime_secret(worker)
    assert "naming 'realtime'" in json.loads(raised.value.response.content)["error"]["message"]
    assert [request.target for request in upstream.requests] == ["/openai/batches"]
