"""Hostile and malformed requests against the rendered Worker in workerd: refused, never a 500."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from dataclasses import dataclass

import httpx
import pytest

from infra.cli.workerd import RunningWorker
from tests.upstream import BASE_PATH, FakeGateway
from tests.worker.conftest import (
    ANTHROPIC_KEYS,
    AUTH,
    CLIENT_TOKENS,
    GATEWAY_TOKEN,
    OPENAI_KEYS,
    SECRETS,
    TOKEN,
    MakeWorker,
    leaked,
)

CHAT = "/v1/chat/completions"
SMALL_LIMIT = 1024


@dataclass(frozen=True)
class RawAnswer:
    """A response read from a hand-written request."""

    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(worker: RunningWorker, head: bytes, body: bytes = b"") -> RawAnswer:
    """Send `head` (request line and headers, without the blank line) byte for byte."""
    method = head.split(b" ", 1)[0].decode()
    port = int(worker.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head + b"\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n" + body)
        response = http.client.HTTPResponse(connection, method=method)
        response.begin()
        data = response.read()
        return RawAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


def _assert_own_error(answer: RawAnswer | httpx.Response, status: int) -> None:
    """The Worker answered `status` itself, as OpenAI-style JSON with no secret in it."""
    if isinstance(answer, RawAnswer):
        body, got = answer.body, answer.status
    else:
        body, got = answer.content, answer.status_code
    assert got == status
    error = json.loads(body)["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert {"type", "code"} <= set(error)
    positions = leaked(body, SECRETS)
    assert positions == []


def _assert_contained(upstream: FakeGateway) -> None:
    """Whatever reached the upstream stayed below `<gateway>/<provider>/`, with no dot segment."""
    for request in upstream.requests:
        path = request.path.split("?", 1)[0]
        assert path.startswith(BASE_PATH + "/openai/") or path.startswith(
            BASE_PATH + "/anthropic/"
        ), path
        segments = path.split("/")
        assert ".." not in segments and "." not in segments, path
        assert "%2f" not in path.lower() and "\\" not in path and "%5c" not in path.lower(), path


def test_body_over_the_limit_is_413_and_not_forwarded(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """A body one byte over maxBodyBytes is refused; one at the limit goes through."""
    worker = make_worker(maxBodyBytes=SMALL_LIMIT)
    at_limit = b'{"pad": "' + b"x" * (SMALL_LIMIT - 11) + b'"}'
    assert len(at_limit) == SMALL_LIMIT
    over = at_limit[:-2] + b'x"}'
    answer = httpx.post(worker.url + CHAT, content=over, headers=AUTH, timeout=30)
    _assert_own_error(answer, 413)
    assert answer.status_code == 413
    assert upstream.requests == []
    assert httpx.post(worker.url + CHAT, content=at_limit, headers=AUTH).status_code == 200
    assert [len(request.body) for request in upstream.requests] == [SMALL_LIMIT]


def test_chunked_body_over_the_limit_is_413(make_worker: MakeWorker, upstream: FakeGateway) -> None:
    """A body without a length that grows past maxBodyBytes is refused all the same."""
    worker = make_worker(maxBodyBytes=SMALL_LIMIT)

    def pieces() -> object:
        for _ in range(4):
            yield b"y" * (SMALL_LIMIT // 2)

    answer = httpx.post(worker.url + CHAT, content=pieces(), headers=AUTH, timeout=30)  # type: ignore[arg-type]  # httpx accepts a sync generator; its stubs say bytes
    assert answer.status_code == 413
    _assert_own_error(answer, 413)
    assert upstream.requests == []


TRAVERSALS = [
    b"/v1/../admin",
    b"/v1/%2e%2e/%2e%2e/admin",
    b"/v1/%2E%2E/x",
    b"/v1/chat%2fcompletions",
    b"/v1/chat%2Fcompletions",
    b"/v1/..%2f..%2fadmin",
    b"/v1/%2e%2e%2fadmin",
    b"/v1/chat%5ccompletions",
    b"/v1/chat\\..\\..\\admin",
    b"/anthropic/..%2fopenai/models",
    b"/anthropic/v1/%2e%2e%2f%2e%2e%2fadmin",
    b"/v1/models/%2e%2e/%2e%2e/admin",
]


@pytest.mark.parametrize("path", TRAVERSALS, ids=[p.decode() for p in TRAVERSALS])
def test_traversal_attempts_are_refused_and_never_forwarded(
    worker: RunningWorker, upstream: FakeGateway, path: bytes
) -> None:
    """Dot segments, encoded slashes and backslashes never leave `<gateway>/<provider>/`."""
    answer = raw_request(
        worker,
        b"POST "
        + path
        + b" HTTP/1.1\r\nauthorization: Bearer "
        + TOKEN.encode()
        + b"\r\ncontent-length: 2",
        b"{}",
    )
    assert answer.status == 404, answer
    _assert_own_error(answer, 404)
    assert upstream.requests == []


@pytest.mark.parametrize("method", ["PUT", "PATCH", "HEAD", "TRACE", "PROPFIND", "FOO"])
def test_other_methods_are_405(worker: RunningWorker, upstream: FakeGateway, method: str) -> None:
    """Only GET, POST and DELETE are proxied; other methods are refused before any upstream call."""
    answer = raw_request(
        worker, method.encode() + b" /v1/models HTTP/1.1\r\nauthorization: Bearer " + TOKEN.encode()
    )
    if method == "FOO":
        # workerd itself answers a method it does not know, before the Worker runs.
        assert answer.status in (405, 501)
    else:
        assert answer.status == 405
        if method != "HEAD":
            _assert_own_error(answer, 405)
    assert upstream.requests == []


def _near_misses() -> list[tuple[str, dict[str, str]]]:
    token = TOKEN
    basic = base64.b64encode(f"alice:{token}".encode()).decode()
    return [
        ("no credentials", {}),
        ("scheme only", {"authorization": "Bearer"}),
        ("bare token", {"authorization": token}),
        ("basic scheme", {"authorization": f"Basic {basic}"}),
        ("token scheme", {"authorization": f"Token {token}"}),
        ("one char changed", {"authorization": f"Bearer {token[:-1]}2"}),
        ("prefix", {"authorization": f"Bearer {token[:-1]}"}),
        ("suffix added", {"authorization": f"Bearer {token}x"}),
        ("upper case", {"authorization": f"Bearer {token.upper()}"}),
        ("client name", {"authorization": "Bearer alice"}),
        ("binding entry", {"authorization": f"Bearer alice:{token}"}),
        ("two tokens", {"authorization": f"Bearer {token},{CLIENT_TOKENS['bob']}"}),
        ("pool key", {"authorization": f"Bearer {OPENAI_KEYS[0]}"}),
        ("gateway token", {"authorization": f"Bearer {GATEWAY_TOKEN}"}),
        ("anthropic header on openai", {"x-api-key": "wrong-token-000000"}),
        ("cf-aig-authorization", {"cf-aig-authorization": f"Bearer {token}"}),
    ]


REFUSED_TOKENS = [
    *(
        pytest.param(CHAT, headers, {"model": "gpt-test"}, id=name)
        for name, headers in _near_misses()
    ),
    pytest.param("/v1/models?key=" + TOKEN, {}, {}, id="query key on openai"),
    pytest.param("/anthropic/v1/messages", {"x-api-key": TOKEN[:-1]}, {}, id="anthropic near miss"),
    pytest.param(
        "/anthropic/v1/messages", {"x-api-key": ANTHROPIC_KEYS[0]}, {}, id="anthropic pool key"
    ),
]


@pytest.mark.parametrize(("path", "headers", "body"), REFUSED_TOKENS)
def test_wrong_near_miss_and_misplaced_tokens_are_401(
    worker: RunningWorker,
    upstream: FakeGateway,
    path: str,
    headers: dict[str, str],
    body: dict[str, str],
) -> None:
    """Anything but an exact client token where the provider's SDK puts it is refused, and
    nothing goes upstream."""
    answer = httpx.post(worker.url + path, json=body, headers=headers)
    assert answer.status_code == 401
    _assert_own_error(answer, 401)
    assert upstream.requests == []


ODD_PATHS = [
    b"/v1/models%00",
    b"/v1/%00/models",
    b"/%ff%fe",
    b"/v1/\xff\xfe",
    b"/v1/\xc3\xa9",
    b"/%",
    b"/v1/%zz",
    b"//v1/models",
    b"/v1//models",
    b"/v1/models;x=1",
    b"/v1/models?%00=%ff",
    b"/healthz%00",
    b"/v1/" + b"a" * 6000,
    b"/v1/models#fragment",
    b"*",
    b"http://evil.example/v1/models",
]


@pytest.mark.parametrize("path", ODD_PATHS, ids=[repr(p)[2:-1][:40] for p in ODD_PATHS])
def test_odd_bytes_in_paths_never_500(
    worker: RunningWorker, upstream: FakeGateway, path: bytes
) -> None:
    """Odd bytes get an answer below 500, and nothing escapes `<gateway>/<provider>/`."""
    answer = raw_request(
        worker, b"GET " + path + b" HTTP/1.1\r\nauthorization: Bearer " + TOKEN.encode()
    )
    assert 200 <= answer.status < 500, answer
    positions = leaked(answer.body, SECRETS)
    assert positions == []
    _assert_contained(upstream)
    if answer.status >= 400 and upstream.requests:
        # A refusal of the Worker's own never comes after an upstream call.
        assert all(request.key for request in upstream.requests)


def test_preflight_needs_no_token_and_stays_local(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """A CORS preflight is answered by the Worker without credentials or an upstream call."""
    answer = httpx.options(
        worker.url + CHAT,
        headers={
            "origin": "https://chat.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-stainless-os",
        },
    )
    assert answer.status_code in (200, 204)
    assert answer.headers["access-control-allow-origin"] in ("*", "https://chat.example.com")
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()
    assert upstream.requests == []
