"""A loopback HTTP server that plays the Cloudflare AI Gateway for the Worker tests.

It answers OpenAI chat completions and Anthropic messages (plain JSON and server-sent events),
behaves per pool key (rate-limited, revoked, failing, slow, dropping the connection), can replay a
script of answers (the conformance cases' responses, dropped connections and silences), and records
every request it receives.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from bench.pool_keys import OPENAI, BucketKey, Tier
from infra.worker.config import UpstreamFailure, UpstreamResponse

Behaviour = Literal[
    "ok", "rate_limited", "revoked", "server_error", "slow", "slow_server_error", "drop", "cut"
]
"""What the upstream does for a pool key: answer; 429 with Retry-After; 401 naming part of the key
(as OpenAI does); 503; answer after `slow_seconds`; 503 after `slow_seconds`; close the connection
without an answer; start a stream and close the connection after the first chunk."""

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
GATEWAY_ID = "aigw-test"
BASE_PATH = f"/v1/{ACCOUNT_ID}/{GATEWAY_ID}"
"""The gateway's path prefix, as on gateway.ai.cloudflare.com, so path mapping is tested whole."""
HOLD_TIMEOUT = 10.0
"""Longest a held stream or a scripted `timeout` waits for its release before going on."""
CHUNK_BYTES = 4096
"""The chunk size of a scripted answer sent with `transfer-encoding: chunked` (no length)."""
UNSCRIPTED = UpstreamResponse(599, {}, b"unscripted request")
"""The answer past the end of a script when `strict_script` is set."""

Scripted = UpstreamResponse | UpstreamFailure
"""A canned answer for the next request, whatever its key: a response (with a `content-length`,
or in chunks if its headers say `transfer-encoding: chunked`), `network-error` (the connection is
reset unanswered) or `timeout` (it stays silent until `reset()` or `HOLD_TIMEOUT`)."""


@dataclass(frozen=True)
class Recorded:
    """One request as the upstream received it."""

    method: str
    path: str
    """The full request target below the host, query string included."""
    headers: Mapping[str, str]
    """Header names in lower case; repeated headers joined with `, `."""
    body: bytes
    key: str | None
    """The pool key the request carried, from whichever header its provider uses."""

    @property
    def route(self) -> str:
        """The path below the gateway's base path, without the query string."""
        path = urlsplit(self.path).path
        return path[len(BASE_PATH) :] if path.startswith(BASE_PATH) else path

    @property
    def target(self) -> str:
        """The raw target below the gateway's base path, query string included."""
        return self.path.removeprefix(BASE_PATH)

    def json(self) -> object:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class StreamHold:
    """Makes the next stream pause after chunk `after` until `release` is set (or the timeout)."""

    after: int
    release: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)
    """Set as the upstream sends chunk `after`, after which it waits for `release`."""
    timed_out: bool = False
    """True when nobody released the stream within `HOLD_TIMEOUT`: the client never saw it."""


GATEWAY_REFUSALS: dict[int, tuple[int, str]] = {
    2003: (429, "Rate limited"),
    2009: (401, "Unauthorized"),
    2016: (400, "Prompt blocked due to security configurations"),
    2021: (402, "Out of credits"),
    2045: (429, "Spend limit exceeded"),
}
"""AI Gateway's own refusals by `internalCode`: (status, message). 2003 and 2009 as AI Gateway
sends them; the statuses and messages of the others are assumed (the Worker reads only the
`name` and the `internalCode`)."""


def gateway_refusal(code: int) -> tuple[int, bytes]:
    """AI Gateway's own refusal `code` (one of `GATEWAY_REFUSALS`): its status and JSON body."""
    status, message = GATEWAY_REFUSALS[code]
    body = {
        "success": False,
        "result": [],
        "messages": [],
        "error": [{"code": code, "message": message}],
        "name": "AiGatewayError",
        "httpCode": status,
        "internalCode": code,
    }
    return status, json.dumps(body, separators=(",", ":")).encode()


def revoked_message(key: str) -> str:
    """What the upstream says about a revoked key: like OpenAI, it shows a fragment of the key."""
    return f"Incorrect API key provided: {key[:8]}***{key[-1:]}. You can find your API key at ..."


class FakeGateway:
    """The loopback upstream; use as a context manager or call `start()` and `stop()`.

    It serves from one asyncio loop in a background thread: a thread per connection makes the
    accept loop wait on the GIL, which the load tests turn into seconds of queueing.
    """

    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        """Per pool key; keys not listed answer normally."""
        self.retry_after = "30"
        self.slow_seconds = 0.5
        self.stream_chunks = 5
        self.chunk_delay = 0.0
        self.holds: list[StreamHold] = []
        self.disconnects = 0
        """Streams whose client went away before the end (a write to it failed)."""
        self.strict_script = False
        """Answer requests past the end of the script with `UNSCRIPTED` instead of normally."""
        self.model_tiers: dict[str, Tier] = {}
        """Per model a request names: each key's token bucket for it, as OpenAI keeps its limits
        per model; answered with OpenAI's rate-limit headers, or its 429 when empty."""
        self.model_buckets: dict[tuple[str, str], BucketKey] = {}
        self.refusal: int | None = None
        """Answer every request, whatever its key, with this refusal of AI Gateway's own (an
        `internalCode` of `GATEWAY_REFUSALS`; a 429 carries `retry_after`); None to answer."""
        self._script: list[Scripted] = []
        self._silence = threading.Event()
        """Set to end every scripted `timeout` now waiting; replaced by `reset()`."""
        self._requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._port = 0

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        """The gateway base URL to render the Worker with (`<origin>/v1/<account>/<gateway>`)."""
        return self.origin + BASE_PATH

    @property
    def requests(self) -> list[Recorded]:
        """A copy of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def key_counts(self) -> Counter[str]:
        """How many requests each pool key carried."""
        return Counter(request.key for request in self.requests if request.key is not None)

    def model_limited(self, request: Recorded) -> tuple[int, dict[str, str], bytes] | None:
        """The answer of the request's (key, model) bucket if `model_tiers` names its model: a
        completion with the bucket's headers, or the 429 of an empty bucket; else None."""
        try:
            model = json.loads(request.body).get("model") if request.body else None
        except (ValueError, AttributeError):
            model = None
        tier = self.model_tiers.get(model) if isinstance(model, str) else None
        if tier is None or model is None:
            return None
        now = time.monotonic()
        with self._lock:
            bucket = self.model_buckets.setdefault(
                (request.key or "", model), BucketKey(request.key or "", tier, at_s=now)
            )
            if not bucket.take(now):
                headers, body = bucket.refusal(OPENAI, now, time.time())
                return 429, headers, body
            headers = bucket.headers(OPENAI, now, time.time())
        body = json.dumps(_openai_completion(model)).encode()
        return 200, {"content-type": "application/json", **headers}, body

    def script(self, *answers: Scripted) -> None:
        """Answer the next requests with `answers`, in order, before behaving normally again.

        Scripted answers close their connection, so each attempt arrives on a fresh one.
        """
        with self._lock:
            self._script.extend(answers)

    def reset(self) -> None:
        """Forget the requests and the script so far, and end the scripted silences now held."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            silence, self._silence = self._silence, threading.Event()
        silence.set()

    def hold_next_stream(self, after: int) -> StreamHold:
        """Pause the next stream after its event number `after` (0-based) until released."""
        hold = StreamHold(after)
        with self._lock:
            self.holds.append(hold)
        return hold

    def start(self) -> FakeGateway:
        """Start serving on 127.0.0.1 in a daemon thread."""
        self._thread.start()
        # The backlog: the load tests open hundreds of connections at once.
        opening = asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
        self._server = asyncio.run_coroutine_threadsafe(opening, self._loop).result(timeout=10)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving, release held streams and close every connection."""
        with self._lock:
            holds = list(self.holds)
        for hold in holds:
            hold.release.set()
        self._silence.set()

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, request: Recorded) -> Scripted | None:
        with self._lock:
            self._requests.append(request)
            if self._script:
                return self._script.pop(0)
            return UNSCRIPTED if self.strict_script else None

    def _take_hold(self) -> StreamHold | None:
        with self._lock:
            return self.holds.pop(0) if self.holds else None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one keep-alive connection until either side closes it."""
        try:
            while await _Exchange(self, reader, writer).serve():
                pass
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


class _Exchange:
    """One request on a connection and its answer."""

    def __init__(
        self, gateway: FakeGateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.gateway = gateway
        self.reader = reader
        self.writer = writer

    async def serve(self) -> bool:
        """Read and answer one request; whether the connection may carry another."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        line, *fields = head[:-4].decode("latin-1").split("\r\n")
        method, target, _ = line.split(" ", 2)
        headers: dict[str, str] = {}
        for field_line in fields:
            name, _, value = field_line.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request = Recorded(
            method=method,
            path=target,
            headers=headers,
            body=await self._body(headers),
            key=_pool_key(headers, target),
        )
        scripted = self.gateway._record(request)
        if scripted is not None:
            return await self._answer_scripted(scripted)
        if self.gateway.refusal is not None:
            status, body = gateway_refusal(self.gateway.refusal)
            extra = {"retry-after": self.gateway.retry_after} if status == 429 else {}
            await self._send(
                status,
                {"content-type": "application/json", "content-length": str(len(body)), **extra},
                body,
            )
            return True
        limited = self.gateway.model_limited(request)
        if limited is not None:
            status, headers, body = limited
            await self._send(status, {**headers, "content-length": str(len(body))}, body)
            return True
        behaviour = self.gateway.behaviours.get(request.key or "", "ok")
        if behaviour == "drop":
            return False
        if behaviour == "rate_limited":
            error = {"message": "Rate limit reached", "type": "rate_limit_exceeded"}
            return await self._json(
                429, {"error": error}, {"retry-after": self.gateway.retry_after}
            )
        if behaviour == "revoked":
            message = revoked_message(request.key or "")
            error = {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}
            return await self._json(401, {"error": error})
        if behaviour == "slow_server_error":
            await asyncio.sleep(self.gateway.slow_seconds)
        if behaviour in ("server_error", "slow_server_error"):
            return await self._json(
                503, {"error": {"message": "upstream overloaded", "type": "server_error"}}
            )
        if behaviour == "slow":
            await asyncio.sleep(self.gateway.slow_seconds)
        return await self._answer(request, cut=behaviour == "cut")

    async def _body(self, headers: Mapping[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers (none expected) end with an empty line.
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += await self.reader.readexactly(size)
                await self.reader.readline()
        length = int(headers.get("content-length") or 0)
        return await self.reader.readexactly(length) if length else b""

    async def _answer(self, request: Recorded, *, cut: bool) -> bool:
        route = request.route
        try:
            payload = json.loads(request.body) if request.body else {}
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        streaming = payload.get("stream") is True
        model = str(payload.get("model", "test-model"))
        chunks = int(request.headers.get("x-test-chunks") or self.gateway.stream_chunks)
        if route == "/openai/chat/completions" and request.method == "POST":
            if streaming:
                return await self._stream(_openai_events(model, chunks), cut=cut)
            return await self._json(200, _openai_completion(model))
        if route == "/anthropic/v1/messages" and request.method == "POST":
            if streaming:
                return await self._stream(_anthropic_events(model, chunks), cut=cut)
            return await self._json(200, _anthropic_message(model))
        if route == "/openai/models" and request.method == "GET":
            listing = {"object": "list", "data": [{"id": "gpt-test", "object": "model"}]}
            return await self._json(200, listing)
        # Anything else: say what arrived, so tests can see the mapped path and method.
        return await self._json(200, {"echo": {"method": request.method, "route": route}})

    async def _send(self, status: int, headers: Mapping[str, str], body: bytes = b"") -> None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Other"
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()

    async def _json(
        self, status: int, body: object, headers: Mapping[str, str] | None = None
    ) -> bool:
        data = json.dumps(body).encode()
        all_headers = {
            "content-type": "application/json",
            "content-length": str(len(data)),
            **(headers or {}),
        }
        await self._send(status, all_headers, data)
        return True

    async def _answer_scripted(self, scripted: Scripted) -> bool:
        """Answer from the script; the connection closes after it either way."""
        if scripted == "timeout":
            with self.gateway._lock:
                silence = self.gateway._silence
            await asyncio.to_thread(silence.wait, HOLD_TIMEOUT)
            scripted = "network-error"
        if scripted == "network-error":
            self._reset_connection()
            return False
        if scripted.headers.get("transfer-encoding") == "chunked":
            # No declared length: the body comes in chunks of CHUNK_BYTES, as a stream would.
            body = b"".join(
                b"%x\r\n%s\r\n" % (len(part), part)
                for part in (
                    scripted.body[start : start + CHUNK_BYTES]
                    for start in range(0, len(scripted.body), CHUNK_BYTES)
                )
            )
            headers = {**scripted.headers, "connection": "close"}
            await self._send(scripted.status, headers, body + b"0\r\n\r\n")
            return False
        headers = {
            **scripted.headers,
            "content-length": str(len(scripted.body)),
            "connection": "close",
        }
        await self._send(scripted.status, headers, scripted.body)
        return False

    def _reset_connection(self) -> None:
        """Close with a TCP reset, not an orderly close: the Worker sees a network error."""
        raw = self.writer.get_extra_info("socket")
        if raw is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def _stream(self, events: Iterator[bytes], *, cut: bool) -> bool:
        """Send server-sent events, one HTTP chunk each, each written out before the next."""
        gateway = self.gateway
        hold = gateway._take_hold()
        headers = {
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "transfer-encoding": "chunked",
        }
        try:
            await self._send(200, headers)
            for number, event in enumerate(events):
                holding = hold if hold is not None and number == hold.after else None
                if holding is not None:
                    # Set before the chunk leaves, so a client holding it always finds it set.
                    holding.reached.set()
                self.writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await self.writer.drain()
                if cut:
                    return False
                if holding is not None:
                    released = await asyncio.to_thread(holding.release.wait, HOLD_TIMEOUT)
                    holding.timed_out = not released
                elif gateway.chunk_delay:
                    await asyncio.sleep(gateway.chunk_delay)
            self.writer.write(b"0\r\n\r\n")
            await self.writer.drain()
        except OSError:
            with gateway._lock:
                gateway.disconnects += 1
            return False
        return True


def _pool_key(headers: Mapping[str, str], target: str) -> str | None:
    """The provider key a request carries, wherever its provider puts it."""
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    for name in ("x-api-key", "x-goog-api-key"):
        if headers.get(name):
            return headers[name]
    query = parse_qs(urlsplit(target).query).get("key")
    return query[0] if query else None


def _sse(data: object, event: str | None = None) -> bytes:
    text = json.dumps(data) if not isinstance(data, str) else data
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()


def _openai_completion(model: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the fake gateway."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
    }


def _openai_events(model: str, chunks: int) -> Iterator[bytes]:
    """`chunks` content deltas `tok0 `, `tok1 `…, then a stop chunk and `[DONE]`."""
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1, "model": model}
    for number in range(chunks):
        delta = (
            {"content": f"tok{number} "} if number else {"role": "assistant", "content": "tok0 "}
        )
        yield _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    yield _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    yield _sse("[DONE]")


def _anthropic_message(model: str) -> dict[str, object]:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello from the fake gateway."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 6},
    }


def _anthropic_events(model: str, chunks: int) -> Iterator[bytes]:
    """The Messages streaming event sequence with `chunks` text deltas `tok0 `, `tok1 `…"""
    start = {**_anthropic_message(model), "content": [], "stop_reason": None}
    yield _sse({"type": "message_start", "message": start}, "message_start")
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    yield _sse(block, "content_block_start")
    for number in range(chunks):
        delta = {"type": "text_delta", "text": f"tok{number} "}
        yield _sse(
            {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
        )
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": chunks},
    }
    yield _sse(message_delta, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")
