"""The official openai and anthropic SDKs as clients of the rendered Worker in workerd."""

from __future__ import annotations

import anthropic
import httpx
import openai

from infra.cli.workerd import RunningWorker
from tests.upstream import FakeGateway
from tests.worker.conftest import ANTHROPIC_KEYS, CLIENT_TOKENS, OPENAI_KEYS, TOKEN, MakeWorker

MESSAGES = [{"role": "user", "content": "Say hello"}]


def _openai(worker: RunningWorker) -> openai.OpenAI:
    return openai.OpenAI(base_url=worker.url + "/v1", api_key=TOKEN, max_retries=0, timeout=30)


def _anthropic(worker: RunningWorker) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=worker.url + "/anthropic", api_key=TOKEN, max_retries=0, timeout=30
    )


def test_openai_chat_completion(worker: RunningWorker, upstream: FakeGateway) -> None:
    """A chat completion comes back whole; upstream sees a pool key, never the client token."""
    completion = _openai(worker).chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from the fake gateway."
    [request] = upstream.requests
    assert (request.method, request.route) == ("POST", "/openai/chat/completions")
    assert request.key in OPENAI_KEYS
    assert request.json() == {"model": "gpt-test", "messages": MESSAGES}
    assert all(TOKEN not in value for value in request.headers.values())


def test_openai_stream_arrives_chunk_by_chunk(worker: RunningWorker, upstream: FakeGateway) -> None:
    """Each streamed chunk reaches the client while the upstream still holds back the rest."""
    upstream.stream_chunks = 6
    hold = upstream.hold_next_stream(after=2)
    stream = _openai(worker).chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True
    )
    contents = []
    for chunk in stream:
        if not chunk.choices:
            continue
        contents.append(chunk.choices[0].delta.content)
        if len(contents) == 3:
            # Chunk 2 is here, and the upstream is waiting: nothing was buffered in between.
            assert hold.reached.is_set()
            hold.release.set()
    assert not hold.timed_out
    assert contents == [f"tok{n} " for n in range(6)] + [None]


def test_anthropic_message(worker: RunningWorker, upstream: FakeGateway) -> None:
    """A plain Messages call through the Worker carries an Anthropic pool key upstream."""
    message = _anthropic(worker).messages.create(
        model="claude-test", max_tokens=16, messages=MESSAGES
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake gateway."
    [request] = upstream.requests
    assert request.route == "/anthropic/v1/messages"
    assert request.key in ANTHROPIC_KEYS
    assert request.headers["x-api-key"] == request.key
    assert "anthropic-version" in request.headers
    assert all(TOKEN not in value for value in request.headers.values())


def test_anthropic_stream_arrives_chunk_by_chunk(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """Anthropic's text deltas reach the client while the upstream holds back the rest."""
    upstream.stream_chunks = 4
    # Events 0 and 1 are message_start and content_block_start; 3 is the second text delta.
    hold = upstream.hold_next_stream(after=3)
    texts = []
    with _anthropic(worker).messages.stream(
        model="claude-test", max_tokens=16, messages=MESSAGES
    ) as stream:
        for text in stream.text_stream:
            texts.append(text)
            if len(texts) == 2:
                assert hold.reached.is_set()
                hold.release.set()
        final = stream.get_final_message()
    assert not hold.timed_out
    assert texts == [f"tok{n} " for n in range(4)]
    assert final.stop_reason == "end_turn"


def test_every_client_token_is_accepted(make_worker: MakeWorker, upstream: FakeGateway) -> None:
    """Each configured client gets through with its own token."""
    worker = make_worker()
    for token in CLIENT_TOKENS.values():
        client = openai.OpenAI(base_url=worker.url + "/v1", api_key=token, max_retries=0)
        assert client.models.list().data[0].id == "gpt-test"
    assert len(upstream.requests) == len(CLIENT_TOKENS)


def test_tokens_of_every_length_match_only_themselves(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """Short, multi-byte and long (hashed) client tokens each get in, and a token one character
    longer, shorter or different does not."""
    tokens = {
        "short": "tok-test-short-01",
        "wide": "tok-test-wide-é€😀-" + "x" * 200,
        "edge": "t" * 253,
        "long": "tok-test-long-" + "y" * 386,
    }
    worker = make_worker(client_tokens=tokens)

    def models(token: str) -> int:
        # As UTF-8 bytes: the SDK's client sends only ASCII header values.
        header = b"Bearer " + token.encode()
        return httpx.get(worker.url + "/v1/models", headers={"authorization": header}).status_code

    for token in tokens.values():
        assert [models(wrong) for wrong in (token + "z", token[:-1], token[:-1] + "q")] == [401] * 3
        assert models(token) == 200
    assert len(upstream.requests) == len(tokens)
