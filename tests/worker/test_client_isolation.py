"""A restricted client as a hostile one would try it, through the official SDKs in workerd.

Each test is one leak of issue 17: what a client could reach or change beyond its policy before
the Worker's gateway-control allow list, endpoint table, body model check, header rules, cache key
and error-body redaction. Raw HTTP (httpx) only where no SDK would send such a request.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from infra.cli.workerd import RunningWorker
from infra.worker.config import UpstreamResponse
from tests.upstream import FakeGateway
from tests.worker.conftest import (
    ANTHROPIC_KEYS,
    CLIENT_TOKENS,
    GATEWAY_TOKEN,
    OPENAI_KEYS,
    SECRETS,
    MakeWorker,
    leaked,
)

ALICE = CLIENT_TOKENS["alice"]
BOB = CLIENT_TOKENS["bob"]
MESSAGES = [{"role": "user", "content": "hi"}]
MODELS = {"alice": {"models": ["gpt-4o-mini", "gpt-image-1-mini", "claude-haiku-*"]}}
"""alice may use these models; bob has no policy."""


def _openai(worker: RunningWorker, token: str = ALICE, **options: object) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=worker.url + "/v1",
        api_key=token,
        max_retries=0,
        timeout=30,
        **options,
    )


def _anthropic(worker: RunningWorker, token: str = ALICE) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=worker.url + "/anthropic", api_key=token, max_retries=0, timeout=30
    )


def _refusal(error: openai.APIStatusError | anthropic.APIStatusError) -> str:
    """The refusal's error code, after checking its body carries no secret."""
    body = error.response.content
    assert leaked(body, SECRETS) == []
    code: str = json.loads(body)["error"]["code"]
    return code


def _json_error(status: int, body: bytes) -> UpstreamResponse:
    """A scripted JSON error answer of the fake gateway."""
    return UpstreamResponse(status, {"content-type": "application/json"}, body)


def test_client_gateway_controls_never_reach_the_gateway(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """A client's cost, logging, retry and metadata controls are dropped (it could otherwise spend
    past its budget or hide from the logs); the cache controls it may send arrive, the TTL capped
    at the gateway's."""
    worker = make_worker(cacheTtl=120)
    controls = {
        "cf-aig-custom-cost": '{"per_token_in":0,"per_token_out":0}',
        "cf-aig-collect-log": "false",
        "cf-aig-collect-log-payload": "false",
        "cf-aig-max-attempts": "5",
        "cf-aig-metadata": '{"client":"bob"}',
        "cf-cache-ttl": "999999",
        "cf-aig-skip-cache": "true",
        "cf-aig-cache-ttl": "86400",
    }
    client = _openai(worker, default_headers=controls)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from the fake gateway."
    [sent] = upstream.requests
    gateway_headers = {name: value for name, value in sent.headers.items() if name[:3] == "cf-"}
    assert json.loads(gateway_headers.pop("cf-aig-metadata"))["client"] == "alice"
    assert gateway_headers.pop("cf-aig-cache-key")  # the Worker's own, shared
    assert gateway_headers == {
        "cf-aig-authorization": f"Bearer {GATEWAY_TOKEN}",
        "cf-aig-skip-cache": "true",
        "cf-aig-cache-ttl": "120",
    }


def test_fallback_and_tool_models_are_checked(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Models named beyond the top-level `model` are checked: OpenRouter's `models` fallbacks, a
    Responses image tool's model (and one that names none, whose default would run), Anthropic's
    server-side `fallbacks`."""
    worker = make_worker(
        provider_keys={
            "openai": OPENAI_KEYS,
            "anthropic": ANTHROPIC_KEYS,
            "openrouter": ("sk-or-test-a",),
        },
        clients={"alice": {"models": [*MODELS["alice"]["models"], "openai/gpt-4o-mini"]}},
    )
    router = openai.OpenAI(
        base_url=worker.url + "/openrouter/v1", api_key=ALICE, max_retries=0, timeout=30
    )
    with pytest.raises(openai.PermissionDeniedError) as fallback:
        router.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            extra_body={"models": ["openai/gpt-4o-mini", "anthropic/claude-opus-4"]},
        )
    assert _refusal(fallback.value) == "model_not_allowed"
    assert 'model "anthropic/claude-opus-4"' in fallback.value.message
    client = _openai(worker)
    for tool in (
        {"type": "image_generation", "model": "gpt-image-1"},
        {"type": "image_generation"},
    ):
        with pytest.raises(openai.PermissionDeniedError) as image:
            client.responses.create(model="gpt-4o-mini", input="a cat", tools=[tool])
        assert _refusal(image.value) == "model_not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError) as opus:
        _anthropic(worker).messages.create(
            model="claude-haiku-4-5",
            max_tokens=16,
            messages=MESSAGES,
            extra_body={"fallbacks": [{"model": "claude-opus-4-1"}]},
        )
    assert _refusal(opus.value) == "model_not_allowed"
    assert upstream.requests == []
    client.responses.create(
        model="gpt-4o-mini",
        input="a cat",
        tools=[{"type": "image_generation", "model": "gpt-image-1-mini"}],
    )
    assert [request.route for request in upstream.requests] == ["/openai/responses"]


def test_stored_objects_of_every_client_are_out_of_reach(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """A client with models cannot list stored completions or files, nor delete a fine-tuned
    model, whatever the method; the model listing and inference work; `endpoints` opens more,
    and a client without a policy is untouched."""
    worker = make_worker(clients={"alice": {**MODELS["alice"], "endpoints": ["GET /v1/files/*"]}})
    client = _openai(worker)
    refusals = [
        lambda: client.chat.completions.list(),
        lambda: client.files.list(),
        lambda: client.models.delete("ft:gpt-4o-mini:acme:x:1"),
        lambda: client.chat.completions.delete("chatcmpl-1"),
    ]
    for call in refusals:
        with pytest.raises(openai.PermissionDeniedError) as refused:
            call()
        assert _refusal(refused.value) == "endpoint_not_allowed"
    assert upstream.requests == []
    assert client.models.list().data[0].id == "gpt-test"
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.files.retrieve("file-1")
    _openai(worker, token=BOB).files.list()
    assert [request.route for request in upstream.requests] == [
        "/openai/models",
        "/openai/chat/completions",
        "/openai/files/file-1",
        "/openai/files",
    ]


def test_paths_and_methods_a_client_chooses(make_worker: MakeWorker, upstream: FakeGateway) -> None:
    """A Google path of an unknown shape does not fall back to the body's model, a model that
    decodes to ? or # is refused, a DELETE with a body is checked like any request, and a method
    override header never reaches upstream."""
    worker = make_worker(
        provider_keys={"openai": OPENAI_KEYS, "google-ai-studio": ("goog-test-a",)},
        clients={"alice": {"models": ["gemini-2.0-flash", "gpt-4o-mini"]}},
    )
    google = {"x-goog-api-key": ALICE}
    base = worker.url + "/google-ai-studio/v1beta"
    tuned = httpx.post(
        f"{base}/tunedModels/mine:generateContent",
        json={"model": "gemini-2.0-flash", "contents": []},
        headers=google,
    )
    assert (tuned.status_code, tuned.json()["error"]["code"]) == (403, "endpoint_not_allowed")
    hidden = httpx.post(
        f"{base}/models/gemini-2.0-flash%253F:generateContent", json={}, headers=google
    )
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (403, "endpoint_not_allowed")
    bearer = {"authorization": f"Bearer {ALICE}"}
    deleted = httpx.request(
        "DELETE",
        worker.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers=bearer,
    )
    assert (deleted.status_code, deleted.json()["error"]["code"]) == (403, "endpoint_not_allowed")
    overridden = httpx.post(
        worker.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers={**bearer, "x-http-method-override": "GET"},
    )
    assert (overridden.status_code, overridden.json()["error"]["code"]) == (
        403,
        "model_not_allowed",
    )
    assert upstream.requests == []
    httpx.post(
        worker.url + "/v1/files",
        content=b"x",
        headers={"authorization": f"Bearer {BOB}", "x-http-method-override": "DELETE"},
    )
    [sent] = upstream.requests
    assert (sent.method, "x-http-method-override" in sent.headers) == ("POST", False)


def test_a_body_naming_model_twice_is_refused(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """JSON.parse keeps the last "model" and a provider's parser may keep the first: such a body
    is refused, whichever comes first, and a plain one passes."""
    worker = make_worker(clients=MODELS)
    headers = {"authorization": f"Bearer {ALICE}", "content-type": "application/json"}
    for body in (
        b'{"model":"gpt-4o","model":"gpt-4o-mini","messages":[]}',
        b'{"model":"gpt-4o-mini","messages":[],"model":"gpt-4o"}',
    ):
        answer = httpx.post(worker.url + "/v1/chat/completions", content=body, headers=headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == (403, "model_not_allowed")
    assert upstream.requests == []
    plain = b'{"model":"gpt-4o-mini","messages":[]}'
    assert httpx.post(
        worker.url + "/v1/chat/completions", content=plain, headers=headers
    ).is_success


def test_organization_headers_never_reach_the_pool(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """The SDK's organization and project go nowhere: with keys of several organizations, one
    such request would have every key but one refused, and the pool would rest them for all."""
    worker = make_worker()
    client = _openai(worker, token=BOB, organization="org-other", project="proj-other")
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    sent = upstream.requests
    assert sorted(request.key or "" for request in sent) == sorted(OPENAI_KEYS)
    assert not [r for r in sent if {"openai-organization", "openai-project"} & set(r.headers)]


def test_cache_key_follows_what_changes_the_answer(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """With caching on, the same SDK request twice shares one cache key whichever pool key sends
    it, while another anthropic-beta is another key: no client chooses what another gets."""
    worker = make_worker(cacheTtl=300)
    client = _anthropic(worker, token=BOB)

    def ask(**extra: object) -> None:
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=16,
            messages=MESSAGES,
            **extra,
        )

    ask()
    ask()
    ask(extra_headers={"anthropic-beta": "some-beta-2026-01-01"})
    keys = [request.headers["cf-aig-cache-key"] for request in upstream.requests]
    assert len({request.key for request in upstream.requests}) == 2
    assert keys[0] == keys[1] != keys[2]


def test_error_bodies_are_redacted_whatever_their_status(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """An error body quoting the pool key and the gateway token reaches the client redacted, a 400
    passed through and a 500 after the last attempt alike."""
    quoting = json.dumps(
        {
            "error": {
                "message": f"key {OPENAI_KEYS[0]} via {GATEWAY_TOKEN} was not accepted",
                "type": "invalid_request_error",
            }
        }
    ).encode()
    upstream.script(_json_error(400, quoting))
    client = _openai(worker, token=BOB)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    message = json.loads(bad.value.response.content)["error"]["message"]
    assert message == "key [redacted] via [redacted] was not accepted"
    upstream.script(*[_json_error(500, quoting)] * 3)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert leaked(failed.value.response.content, SECRETS) == []
    assert b"[redacted]" in failed.value.response.content


def test_streamed_text_error_is_redacted_in_every_form(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """A text/plain error body streamed past the read bound, in chunks without a length, reaches
    the client with the pool key redacted in every form it is written (escaped, upper-cased,
    percent-encoded, an HTML reference), also where a form straddles two chunks."""
    forms = [
        "\\u0073k-test-a",
        OPENAI_KEYS[0].upper(),
        "%73k%2dtest%2da",
        "&#115;&#x6B;-test-a",
        GATEWAY_TOKEN.upper(),
    ]
    text = ""
    for number, form in enumerate(forms * 4):
        # Each form ends a few bytes past a chunk boundary (CHUNK_BYTES = 4096), so some are split.
        text += "x" * (4096 * (number + 1) - len(text) - len(form) + 3) + form
    body = text.encode()
    upstream.script(
        UpstreamResponse(400, {"content-type": "text/plain", "transfer-encoding": "chunked"}, body)
    )
    response = httpx.post(
        worker.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {BOB}"},
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
        timeout=30,
    )
    assert response.status_code == 400
    expected = text
    for form in forms:
        expected = expected.replace(form, "[redacted]")
    assert response.text == expected
    assert response.text.count("[redacted]") == len(forms) * 4
