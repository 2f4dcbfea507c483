"""A loopback stand-in for the AI Gateway's OpenAI endpoint, lean enough not to be what is measured.

It is a bare HTTP/1.1 server on asyncio streams (stdlib only, keep-alive, chunked bodies both
ways) run in its own process by the benchmark: `python -m bench.upstream` prints its URL and serves
until stdin closes. It answers `POST …/chat/completions` with a JSON completion or, for
`"stream": true`, with server-sent events of `chunks` chunks `interval_ms` apart; each chunk's
content is `"<index>:<send time in µs>"`, so a client can compare the gaps as sent with the gaps as
received whatever proxy re-encodes the events. `PUT /_bench/config` sets the stream shape and
which keys answer 429 and how often; `GET /_bench/stats` counts what arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

KEYS = ("sk-bench-a", "sk-bench-b", "sk-bench-c", "sk-bench-d")
"""The fake provider keys of the pool; the upstream answers 401 to any other key."""

MODEL = "gpt-4o-mini"
RETRY_AFTER_SECONDS = 0
"""The `Retry-After` of a 429: 0, so no proxy can sideline a flaky key with a cool-down outlasting
the short benchmark phase; every 429 has to be absorbed by failover (or reach the client)."""

_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
_REASONS |= {429: "Too Many Requests"}


@dataclass
class UpstreamConfig:
    """What the upstream does; changed between benchmark phases through `PUT /_bench/config`."""

    chunks: int = 20
    interval_ms: float = 20.0
    flaky_keys: frozenset[str] = frozenset()
    flaky_rate: float = 0.0
    seed: int = 6


@dataclass
class Upstream:
    """The server's state: its configuration and what it has been asked so far."""

    config: UpstreamConfig = field(default_factory=UpstreamConfig)
    rng: random.Random = field(default_factory=lambda: random.Random(6))
    statuses: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    keys: Counter[str] = field(default_factory=Counter)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one keep-alive connection until the client closes it."""
        await serve_connection(reader, writer, self._answer)

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> None:
        method, path, headers, body = request.method, request.path, request.headers, request.body
        if path == "/_bench/config" and method == "PUT":
            self._configure(json.loads(body))
            self._send(writer, 204, b"")
        elif path == "/_bench/stats" and method == "GET":
            stats = {"statuses": self.statuses, "paths": self.paths, "keys": self.keys}
            self._send(writer, 200, json.dumps(stats).encode())
        elif path.endswith("/chat/completions") and method == "POST":
            self.paths[path] += 1
            await self._complete(writer, headers, body)
        else:
            self._send(writer, 404, _error("no such route", "not_found"))

    def _configure(self, raw: dict[str, Any]) -> None:
        """Apply a `PUT /_bench/config` (the benchmark's own JSON) and start counting afresh."""
        config = UpstreamConfig(
            chunks=int(raw.get("chunks", self.config.chunks)),
            interval_ms=float(raw.get("interval_ms", self.config.interval_ms)),
            flaky_keys=frozenset(raw.get("flaky_keys", ())),
            flaky_rate=float(raw.get("flaky_rate", 0.0)),
            seed=int(raw.get("seed", 6)),
        )
        self.config = config
        self.rng = random.Random(config.seed)
        self.statuses.clear()
        self.paths.clear()
        self.keys.clear()

    async def _complete(
        self, writer: asyncio.StreamWriter, headers: dict[str, str], body: bytes
    ) -> None:
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if key not in KEYS:
            self.statuses["401"] += 1
            self._send(writer, 401, _error("Incorrect API key provided", "invalid_api_key"))
            return
        self.keys[key] += 1
        if key in self.config.flaky_keys and self.rng.random() < self.config.flaky_rate:
            self.statuses["429"] += 1
            message = _error("Rate limit reached for requests", "rate_limit_exceeded")
            self._send(writer, 429, message, {"retry-after": str(RETRY_AFTER_SECONDS)})
            return
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            self.statuses["400"] += 1
            self._send(writer, 400, _error("body is not JSON", "invalid_request_error"))
            return
        self.statuses["200"] += 1
        if request.get("stream"):
            await self._stream(writer)
        else:
            self._send(writer, 200, COMPLETION)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        interval = self.config.interval_ms / 1000
        start = time.perf_counter()
        for index in range(self.config.chunks):
            # Sleep to an absolute schedule so late wake-ups do not add up over the stream.
            delay = start + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_us = time.perf_counter_ns() // 1000
            delta: dict[str, str] = {"content": f"{index}:{sent_us} "}
            if index == 0:
                delta["role"] = "assistant"
            _write_chunk(writer, _event(_chunk(delta, None)))
            await writer.drain()
        _write_chunk(writer, _event(_chunk({}, "stop")) + b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")

    @staticmethod
    def _send(
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        extra: dict[str, str] | None = None,
    ) -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
        if body:
            head.append("content-type: application/json")
        head.append(f"content-length: {len(body)}")
        head.extend(f"{name}: {value}" for name, value in (extra or {}).items())
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


@dataclass(frozen=True)
class Request:
    """One HTTP/1.1 request as the stand-ins read it: lower-case header names."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.split("?", 1)[0]


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    answer: Callable[[Request, asyncio.StreamWriter], Awaitable[None]],
) -> None:
    """Serve one keep-alive connection, each request answered by `answer`, until it closes."""
    try:
        while (request := await _read_request(reader)) is not None:
            await answer(request, writer)
            await writer.drain()
            if request.headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on the connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers, await _read_body(reader, headers))


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                # Trailers (none expected) end with an empty line.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0"))
    return await reader.readexactly(length) if length else b""


def _write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict[str, str], finish_reason: str | None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def _error(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()


COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "pong"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()


async def serve_on_loopback(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], port: int
) -> None:
    """Serve `handle` on 127.0.0.1:`port`, print the URL, and stop when stdin closes (the parent
    exited). Both stand-ins (this one and `bench.pool_upstream`) run this way."""
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def run_stand_in(
    description: str | None,
    handler: Callable[[], Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]],
) -> None:
    """A stand-in's command line, `[--port N]`: serve the handler `handler()` makes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    asyncio.run(serve_on_loopback(handler(), port))


def main() -> None:
    """`python -m bench.upstream [--port N]`."""
    run_stand_in(__doc__.splitlines()[0] if __doc__ else None, lambda: Upstream().handle)


if __name__ == "__main__":
    main()
