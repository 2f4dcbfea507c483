"""Secret hygiene: with recognisable fake secrets, none shows in any response, header or log."""

from __future__ import annotations

import httpx
import openai

from infra.cli.workerd import RunningWorker
from tests.upstream import FakeGateway, revoked_message
from tests.worker.conftest import (
    ANTHROPIC_KEYS,
    AUTH,
    GATEWAY_TOKEN,
    OPENAI_KEYS,
    SECRETS,
    TOKEN,
    MakeWorker,
    leaked,
)

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def _fragments() -> list[str]:
    """The key fragments the upstream puts in its 401 bodies, as OpenAI does."""
    keys = (*OPENAI_KEYS, *ANTHROPIC_KEYS)
    return [revoked_message(key).split(": ", 1)[1].split(". ", 1)[0] for key in keys]


def _exchanges(worker: RunningWorker, upstream: FakeGateway) -> list[httpx.Response]:
    """Every kind of answer the Worker gives: proxied, streamed, failed over, refused, its own."""
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=worker.url, timeout=30) as client:

        def keep(answer: httpx.Response) -> None:
            answer.read()
            answers.append(answer)

        keep(client.get("/healthz"))
        keep(client.get("/v1/models", headers=AUTH))
        keep(client.post("/v1/chat/completions", json=CHAT, headers=AUTH))
        keep(client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH))
        keep(client.post("/anthropic/v1/messages", json=MESSAGE, headers={"x-api-key": TOKEN}))
        keep(client.post("/anthropic/v1/messages", json={**MESSAGE, "stream": True}, headers=AUTH))
        keep(client.options("/v1/chat/completions", headers={"origin": "https://a.example"}))
        keep(client.post("/v1/chat/completions", json=CHAT))
        keep(client.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer x"}))
        keep(client.get("/nowhere", headers=AUTH))
        keep(client.put("/v1/models", headers=AUTH))
        keep(client.post("/v1/%2e%2e/x", headers=AUTH))
        keep(client.post("/v1/chat/completions", content=b"x" * 4096, headers=AUTH))
        # One revoked key, absorbed; then every key limited; then every key revoked.
        upstream.behaviours[OPENAI_KEYS[1]] = "revoked"
        for _ in OPENAI_KEYS:
            keep(client.post("/v1/chat/completions", json=CHAT, headers=AUTH))
        # 429s that state no time rest their keys on a guess, so the revoked keys below are
        # still tried (a stated time would have the Worker answer pool_exhausted itself).
        upstream.retry_after = "soon"
        for key in ANTHROPIC_KEYS:
            upstream.behaviours[key] = "rate_limited"
        keep(client.post("/anthropic/v1/messages", json=MESSAGE, headers=AUTH))
        for key in (*OPENAI_KEYS, *ANTHROPIC_KEYS):
            upstream.behaviours[key] = "revoked"
        keep(client.post("/v1/chat/completions", json=CHAT, headers=AUTH))
        keep(client.post("/anthropic/v1/messages", json=MESSAGE, headers=AUTH))
    return answers


def test_no_secret_in_any_response_header_or_log(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Across every kind of answer, no key, token or key fragment reaches the client or the log."""
    worker = make_worker(maxBodyBytes=1024)
    answers = _exchanges(worker, upstream)
    statuses = [answer.status_code for answer in answers]
    # The run covered what it claims to: success, refusals of each kind, 429 and 401 from upstream.
    assert {200, 401, 404, 405, 413, 429} <= set(statuses)
    assert statuses[-2:] == [401, 401]
    log = worker.log_path.read_text(encoding="utf-8", errors="replace")
    assert "aigw:" in log  # the Worker did log its failovers: there was something to search
    captured = [log]
    for answer in answers:
        captured.append(answer.text)
        captured.extend(f"{name}: {value}" for name, value in answer.headers.multi_items())
    text = "\n".join(captured)
    positions = leaked(text, (*SECRETS, *_fragments()))
    assert positions == []


def test_secrets_go_only_where_they_belong(worker: RunningWorker, upstream: FakeGateway) -> None:
    """Upstream gets one pool key in its header and the gateway token, never the client token."""
    client = openai.OpenAI(base_url=worker.url + "/v1", api_key=TOKEN, max_retries=0)
    client.chat.completions.create(model="gpt-test", messages=CHAT["messages"])  # type: ignore[arg-type]  # plain dicts; the SDK types them as TypedDicts
    [request] = upstream.requests
    assert request.headers["authorization"] == f"Bearer {request.key}"
    assert request.headers["cf-aig-authorization"] == f"Bearer {GATEWAY_TOKEN}"
    metadata = request.headers["cf-aig-metadata"]
    assert "alice" in metadata
    others = [value for name, value in request.headers.items() if name != "authorization"]
    everything = "\n".join([request.path, request.body.decode(), *others])
    positions = leaked(everything, (*OPENAI_KEYS, *ANTHROPIC_KEYS, TOKEN))
    assert positions == []
