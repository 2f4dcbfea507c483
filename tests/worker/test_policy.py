"""Client policies in the rendered Worker in workerd: expiry, providers, models, rate limits."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import anthropic
import httpx
import openai
import pytest

from infra.cli.workerd import RunningWorker, serve_worker
from infra.providers import secret_values
from infra.settings import load
from infra.worker.render import render_worker
from tests.upstream import ACCOUNT_ID, GATEWAY_ID, FakeGateway
from tests.worker.conftest import CLIENT_TOKENS, SECRETS, MakeWorker, leaked

MESSAGES = [{"role": "user", "content": "Say hello"}]
ALICE = CLIENT_TOKENS["alice"]
BOB = CLIENT_TOKENS["bob"]
STAND_IN_LINE = "aigw rate limit RATE_LIMIT_"
"""How the local rate-limit stand-in starts the line it logs for each `limit()` call."""


def _openai(worker: RunningWorker, token: str = ALICE) -> openai.OpenAI:
    return openai.OpenAI(base_url=worker.url + "/v1", api_key=token, max_retries=0, timeout=30)


def _anthropic(worker: RunningWorker, token: str = ALICE) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=worker.url + "/anthropic", api_key=token, max_retries=0, timeout=30
    )


def _chat(worker: RunningWorker, model: str = "gpt-4o-mini", token: str = ALICE) -> str | None:
    completion = _openai(worker, token).chat.completions.create(model=model, messages=MESSAGES)
    return completion.choices[0].message.content


def _error(refusal: openai.APIStatusError | anthropic.APIStatusError) -> dict[str, str]:
    """The OpenAI-style error of a refusal, after checking it carries no secret."""
    body = refusal.response.content
    assert leaked(body, SECRETS) == []
    document = json.loads(body)
    assert set(document) == {"error"}
    error: dict[str, str] = document["error"]
    return error


def _limit_calls(worker: RunningWorker, client: str) -> int:
    """How many `limit()` calls the local stand-in logged for `client`'s key."""
    log = worker.log_path.read_text(encoding="utf-8", errors="replace")
    return sum(
        1 for line in log.splitlines() if line.startswith(STAND_IN_LINE) and f": {client} " in line
    )


def test_expired_client_is_refused_with_the_date(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """A client past its expiry gets 401 client_token_expired naming the UTC date; no upstream
    call is made; a client without a policy still gets through."""
    worker = make_worker(clients={"alice": {"expires": "2021-03-04T05:06:07+01:00"}})
    with pytest.raises(openai.AuthenticationError) as refused:
        _chat(worker)
    assert refused.value.status_code == 401
    assert _error(refused.value) == {
        "message": "the tokens of client alice expired at 2021-03-04T04:06:07Z: ask the "
        "operator for a new one",
        "type": "authentication_error",
        "code": "client_token_expired",
    }
    assert upstream.requests == []
    assert _chat(worker, token=BOB) == "Hello from the fake gateway."


def test_provider_outside_the_list_is_refused(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """A client limited to Anthropic gets 403 provider_not_allowed on OpenAI and reaches
    Anthropic."""
    worker = make_worker(clients={"alice": {"providers": ["anthropic"]}})
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _chat(worker)
    assert _error(refused.value) == {
        "message": "client alice may not call openai; its providers are anthropic",
        "type": "permission_error",
        "code": "provider_not_allowed",
    }
    assert upstream.requests == []
    message = _anthropic(worker).messages.create(
        model="claude-test", max_tokens=16, messages=MESSAGES
    )
    assert message.content[0].type == "text"
    assert [request.route for request in upstream.requests] == ["/anthropic/v1/messages"]


def test_models_and_globs_with_the_sdks(make_worker: MakeWorker, upstream: FakeGateway) -> None:
    """Listed names and `*` globs pass on the whole name, in OpenAI and Anthropic bodies alike;
    anything else is 403 model_not_allowed before any upstream call."""
    models = ["gpt-4o-mini", "claude-*-haiku-*"]
    worker = make_worker(clients={"alice": {"models": models}})
    assert _chat(worker, "gpt-4o-mini") == "Hello from the fake gateway."
    for model in ("gpt-4o", "gpt-4o-mini-2024-07-18", "my-gpt-4o-mini"):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            _chat(worker, model)
        assert _error(refused.value)["code"] == "model_not_allowed", model
    _anthropic(worker).messages.create(
        model="claude-9-haiku-test", max_tokens=16, messages=MESSAGES
    )
    with pytest.raises(anthropic.PermissionDeniedError) as refused_claude:
        _anthropic(worker).messages.create(
            model="claude-3-opus-latest", max_tokens=16, messages=MESSAGES
        )
    assert _error(refused_claude.value) == {
        "message": 'client alice may not use model "claude-3-opus-latest"; its models are '
        "gpt-4o-mini, "
        "claude-*-haiku-*",
        "type": "permission_error",
        "code": "model_not_allowed",
    }
    sent = [(request.route, request.json()["model"]) for request in upstream.requests]  # type: ignore[index]  # the fake's JSON bodies are objects
    assert sent == [
        ("/openai/chat/completions", "gpt-4o-mini"),
        ("/anthropic/v1/messages", "claude-9-haiku-test"),
    ]


def test_google_and_workers_ai_models_come_from_the_path(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Google's `models/<model>:<method>` and Workers AI's `@cf/...` paths name the model; a body
    naming an allowed model does not override a path naming another."""
    worker = make_worker(
        provider_keys={"google-ai-studio": ("goog-test-a",), "workers-ai": ("cf-test-ai-a",)},
        clients={"alice": {"models": ["gemini-2.0-flash", "@cf/meta/*"]}},
    )
    google = {"x-goog-api-key": ALICE}
    bearer = {"authorization": f"Bearer {ALICE}"}
    base = worker.url
    allowed = httpx.post(
        f"{base}/google-ai-studio/v1beta/models/gemini-2.0-flash:generateContent",
        json={"contents": []},
        headers=google,
    )
    assert allowed.status_code == 200
    refused = httpx.post(
        f"{base}/google-ai-studio/v1beta/models/gemini-2.5-pro:generateContent",
        json={"model": "gemini-2.0-flash"},
        headers=google,
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "model_not_allowed")
    llama = httpx.post(f"{base}/workers-ai/@cf/meta/llama-3.1-8b-instruct", json={}, headers=bearer)
    assert llama.status_code == 200
    mistral = httpx.post(
        f"{base}/workers-ai/@cf/mistral/mistral-7b-instruct-v0.1",
        json={"model": "@cf/meta/llama-3.1-8b-instruct"},
        headers=bearer,
    )
    assert (mistral.status_code, mistral.json()["error"]["code"]) == (403, "model_not_allowed")
    assert [request.route for request in upstream.requests] == [
        "/google-ai-studio/v1beta/models/gemini-2.0-flash:generateContent",
        "/workers-ai/@cf/meta/llama-3.1-8b-instruct",
    ]


def test_rate_limit_per_client_and_reset_after_its_period(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Over its limit a client gets 429 rate_limited with Retry-After: the period; another client
    keeps its own count; after the period the client gets through again."""
    worker = make_worker(clients={"*": {"rateLimit": {"limit": 2, "period": 10}}})
    started = time.monotonic()
    _chat(worker)
    _chat(worker)
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(worker)
    assert refused.value.response.headers["retry-after"] == "10"
    assert _error(refused.value) == {
        "message": "client alice is over its rate limit of 2 requests per 10 s; retry after 10 s",
        "type": "rate_limit_error",
        "code": "rate_limited",
    }
    # Bob's burst is his own: Alice's spent limit does not touch it, and his does not touch hers.
    _chat(worker, token=BOB)
    _chat(worker, token=BOB)
    with pytest.raises(openai.RateLimitError):
        _chat(worker, token=BOB)
    assert len(upstream.requests) == 4
    # The window opened with Alice's first request; wait out the period (a real wait, once).
    time.sleep(max(0.0, started + 10.5 - time.monotonic()))
    assert _chat(worker) == "Hello from the fake gateway."
    assert len(upstream.requests) == 5


def test_refusals_do_not_count_against_the_rate_limit(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Requests refused for their model are not counted (the binding is not even asked), so
    the client's one allowed request still gets through after them."""
    worker = make_worker(
        clients={"alice": {"models": ["gpt-4o-mini"], "rateLimit": {"limit": 1, "period": 60}}}
    )
    for _ in range(3):
        with pytest.raises(openai.PermissionDeniedError):
            _chat(worker, "gpt-4o")
    assert _limit_calls(worker, "alice") == 0
    assert _chat(worker) == "Hello from the fake gateway."
    with pytest.raises(openai.RateLimitError):
        _chat(worker)
    assert _limit_calls(worker, "alice") == 2
    assert len(upstream.requests) == 1


def test_client_without_policy_makes_no_binding_call(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """A client the policies do not name is never rate limited and costs no binding call, while
    the named client's every request is one call."""
    worker = make_worker(clients={"alice": {"rateLimit": {"limit": 1, "period": 60}}})
    for _ in range(3):
        assert _chat(worker, token=BOB) == "Hello from the fake gateway."
    _chat(worker)
    with pytest.raises(openai.RateLimitError):
        _chat(worker)
    assert (_limit_calls(worker, "bob"), _limit_calls(worker, "alice")) == (0, 2)
    assert len(upstream.requests) == 4


def test_rotating_client_is_accepted_with_both_tokens(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """While a client rotates, its old and its new token both work and both are that client;
    a third token of the same shape does not."""
    new_token = "tok-test-alice-0002"
    worker = make_worker(client_tokens={"alice": [ALICE, new_token], "bob": BOB})
    assert _chat(worker, token=ALICE) == "Hello from the fake gateway."
    assert _chat(worker, token=new_token) == "Hello from the fake gateway."
    with pytest.raises(openai.AuthenticationError):
        _chat(worker, token="tok-test-alice-0003")
    clients = [json.loads(r.headers["cf-aig-metadata"])["client"] for r in upstream.requests]
    assert clients == ["alice", "alice"]
    shown = json.dumps([dict(r.headers) for r in upstream.requests])
    assert leaked(shown, (ALICE, new_token)) == []


def test_missing_rate_limit_binding_refuses_rather_than_not_limit(
    upstream: FakeGateway,
) -> None:
    """A Worker served without its rate-limit binding answers 500 rate_limit_unavailable naming
    the binding, instead of letting the client through unlimited."""
    raw: Mapping[str, object] = {
        "accountId": ACCOUNT_ID,
        "gatewayId": GATEWAY_ID,
        "providerKeys": {"openai": ["sk-test-a"]},
        "clientTokens": {"alice": ALICE},
        "clients": {"alice": {"rateLimit": {"limit": 5, "period": 60}}},
    }
    settings, secrets = load(raw, "test")
    source = render_worker(settings, gateway_url=upstream.url)
    bindings = secret_values(secrets.provider_keys, secrets.client_tokens, None)
    with serve_worker(source, bindings) as worker:
        answer = httpx.post(
            worker.url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini"},
            headers={"authorization": f"Bearer {ALICE}"},
        )
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "rate_limit_unavailable"
    assert "RATE_LIMIT_5_PER_60S" in answer.json()["error"]["message"]
    assert upstream.requests == []
