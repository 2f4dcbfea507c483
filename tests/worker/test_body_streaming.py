"""When the Worker reads the request body before going upstream, and when it streams it through.

Failover resends the same bytes, so a request that may get a second attempt has its body buffered
first. One that cannot (a single key, or `maxAttempts` 1) and that nothing in the Worker reads
goes upstream as it arrives, as the recipe's does: the gateway sees it begin before the client has
finished sending it. A gateway that answers only once it has seen the whole body tells the two
apart: it is told when the request's head arrives.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.worker.conftest import TOKEN, MakeWorker

HEAD_WAIT = 5.0
"""How long a streamed request's head may take to reach the gateway."""
QUIET_WAIT = 0.5
"""How long a buffered request must keep the gateway waiting while its body is unfinished."""
COMPLETION = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'


CHAT = "/v1/chat/completions"
MISTRAL_CHAT = "/mistral/v1/chat/completions"


@dataclass
class HeadWatchingGateway:
    """A one-request loopback gateway recording when the head arrived and what the body was."""

    url: str = ""
    head_arrived: threading.Event = field(default_factory=threading.Event)
    head: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@pytest.fixture
def gateway() -> Iterator[HeadWatchingGateway]:
    """The gateway, serving one request in a thread until the test ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    watcher = HeadWatchingGateway(url=f"http://127.0.0.1:{listener.getsockname()[1]}")

    def serve() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as reader:
            reader.readline()  # the request line
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                watcher.head[name.strip().lower()] = value.strip()
            watcher.head_arrived.set()
            watcher.body = reader.read(int(watcher.head.get("content-length", "0")))
            connection.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(COMPLETION), COMPLETION)
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield watcher
    finally:
        listener.close()  # also ends the wait in accept() of a test whose request never came
        thread.join(timeout=HEAD_WAIT)


def _send_in_two_halves(
    url: str, body: bytes, gateway: HeadWatchingGateway, wait: float, path: str = CHAT
) -> tuple[bool, int, bytes]:
    """POST `body` in two halves with `wait` between them: (head seen in between, status, body)."""
    port = int(url.rsplit(":", 1)[1])
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head + body[:half])
        seen_early = gateway.head_arrived.wait(wait)
        connection.sendall(body[half:])
        response = http.client.HTTPResponse(connection, method="POST")
        response.begin()
        return seen_early, response.status, response.read()


BODY = (
    b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"p" * 4000 + b'"}]}'
)


@pytest.mark.parametrize(
    "config",
    [
        {"provider_keys": {"mistral": ("sk-test-a",)}},
        {"provider_keys": {"mistral": ("sk-test-a", "sk-test-b")}, "maxAttempts": 1},
    ],
    ids=["one-key", "max-attempts-1"],
)
def test_a_body_no_second_attempt_needs_streams_through(
    make_worker: MakeWorker, gateway: HeadWatchingGateway, config: dict[str, object]
) -> None:
    """With no failover possible, to a provider whose limits are not per model, the gateway sees
    the request begin before its body is complete, and still gets every byte under the declared
    length (not a chunked upload)."""
    worker = make_worker(gateway_url=gateway.url, **config)
    seen_early, status, answer = _send_in_two_halves(
        worker.url, BODY, gateway, HEAD_WAIT, MISTRAL_CHAT
    )
    assert seen_early
    assert (status, answer) == (200, COMPLETION)
    assert gateway.body == BODY
    assert gateway.head["content-length"] == str(len(BODY))
    assert "transfer-encoding" not in gateway.head


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"provider_keys": {"openai": ("sk-test-a",)}, "clients": {"alice": {"models": ["gpt-*"]}}},
        {"provider_keys": {"openai": ("sk-test-a",)}, "cacheTtl": 60},
        {"provider_keys": {"openai": ("sk-test-a",)}},
    ],
    ids=["failover-possible", "models-policy", "gateway-cache", "limits-per-model"],
)
def test_a_body_something_needs_is_read_first(
    make_worker: MakeWorker, gateway: HeadWatchingGateway, config: dict[str, object]
) -> None:
    """Several keys (failover resends the same bytes), a `models` policy, the gateway cache key or
    a provider whose limits are per model (the key state is the model's) need the whole body:
    nothing reaches the gateway until it is complete."""
    worker = make_worker(gateway_url=gateway.url, **config)
    seen_early, status, answer = _send_in_two_halves(worker.url, BODY, gateway, QUIET_WAIT)
    assert not seen_early
    assert (status, answer) == (200, COMPLETION)
    assert gateway.body == BODY
    assert gateway.head["content-length"] == str(len(BODY))
