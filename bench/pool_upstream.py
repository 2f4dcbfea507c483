"""A stand-in AI Gateway whose provider keys are rate-limited, for `python -m bench.pool`.

Each pool key is a token bucket (`bench/pool_keys.py`) and every answer carries that provider's
rate-limit headers: a path under `/anthropic/` answers as Anthropic does, any other as OpenAI does.
A request takes a token when it arrives and is answered after `latency_ms`, as a provider would
after generating; one that finds no token gets the provider's 429 at once. It runs in its own
process (`python -m bench.pool_upstream` prints its URL and serves until stdin closes), so the
benchmark's client does not share its event loop.

`PUT /_bench/config` sets the keys' tiers (or, with `"models"`, a scenario of
`bench/pool_models.py`: a bucket per key and model), the latency and fills every bucket;
`GET /_bench/stats` counts the answers since; `GET /_bench/soonest` says in how many seconds some
key takes a request again (0 when one would take it now), which the benchmark compares with a
client's `Retry-After`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench import pool_models
from bench.pool_keys import ANTHROPIC, OPENAI, BucketKey, Tier
from bench.upstream import COMPLETION, KEYS, Request, Upstream, run_stand_in, serve_connection

START_WALL = time.time() - time.monotonic()
"""The Unix time of monotonic 0, for Anthropic's absolute resets."""


@dataclass
class PoolUpstream:
    """The stand-in's state: the keys' buckets and what they answered."""

    buckets: dict[str, BucketKey] = field(default_factory=dict)
    latency_s: float = 0.05
    statuses: Counter[str] = field(default_factory=Counter)
    keys: Counter[str] = field(default_factory=Counter)
    models: pool_models.Keys | None = None
    """The scenario's buckets per key and model, when one is set."""
    attempts: Counter[str] = field(default_factory=Counter)
    """Attempts per model a request named (a scenario's)."""

    def configure(self, raw: dict[str, Any]) -> None:
        """`{"tiers": {key: [limit, window_s]}, "latency_ms": n}`: fresh, full buckets."""
        self.buckets = {
            key: BucketKey(key, Tier(int(limit), float(window)), at_s=time.monotonic())
            for key, (limit, window) in raw["tiers"].items()
        }
        self.latency_s = float(raw.get("latency_ms", 50)) / 1000
        scenario = raw.get("models")
        self.models = (
            None
            if scenario is None
            else pool_models.Keys(scenario, tuple(KEYS[: pool_models.KEYS]))
        )
        self.statuses.clear()
        self.keys.clear()
        self.attempts.clear()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one keep-alive connection until the client closes it."""
        await serve_connection(reader, writer, self._answer)

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> None:
        method, path = request.method, request.path
        send = Upstream._send
        if path == "/_bench/config" and method == "PUT":
            self.configure(json.loads(request.body))
            send(writer, 204, b"")
        elif path == "/_bench/stats" and method == "GET":
            stats = {
                "statuses": self.statuses,
                "keys": self.keys,
                "attempts": self.attempts,
                "large_attempts": 0 if self.models is None else self.models.large_attempts,
            }
            send(writer, 200, json.dumps(stats).encode())
        elif path == "/_bench/soonest" and method == "GET":
            now = time.monotonic()
            soonest = min((b.next_token_s(now) for b in self.buckets.values()), default=0.0)
            send(writer, 200, json.dumps({"seconds": soonest}).encode())
        elif method == "POST" and path.endswith(("/chat/completions", "/v1/messages")):
            await self._complete(writer, request.headers, path, request.body)
        else:
            send(writer, 404, b'{"error":{"message":"no such route"}}')

    async def _complete(
        self, writer: asyncio.StreamWriter, headers: dict[str, str], path: str, body: bytes
    ) -> None:
        style = ANTHROPIC if "/anthropic/" in path else OPENAI
        key = headers.get("x-api-key") if style == ANTHROPIC else None
        key = key or headers.get("authorization", "").removeprefix("Bearer ").strip()
        if self.models is not None:
            await self._complete_model(writer, key, body)
            return
        bucket = self.buckets.get(key)
        if bucket is None:
            self.statuses["401"] += 1
            Upstream._send(writer, 401, b'{"error":{"message":"Incorrect API key provided"}}')
            return
        self.keys[key] += 1
        now = time.monotonic()
        if not bucket.take(now):
            self.statuses["429"] += 1
            extra, body = bucket.refusal(style, now, START_WALL + now)
            extra.pop("content-type")
            Upstream._send(writer, 429, body, extra)
            return
        self.statuses["200"] += 1
        extra = bucket.headers(style, now, START_WALL + now)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        Upstream._send(writer, 200, _ANSWERS[style], extra)

    async def _complete_model(self, writer: asyncio.StreamWriter, key: str, raw: bytes) -> None:
        """Answer from the scenario's bucket of the key and the model the body names."""
        assert self.models is not None
        body = json.loads(raw or b"{}")
        model = str(body.get("model"))
        self.attempts[model] += 1
        now = time.monotonic()
        status, extra, answer = self.models.answer(key, model, body, now, START_WALL + now)
        self.statuses[str(status)] += 1
        self.keys[key] += 1
        if status == 200 and self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        extra.pop("content-type", None)
        Upstream._send(writer, status, answer if status != 200 else COMPLETION, extra)


_ANSWERS = {
    OPENAI: COMPLETION,
    ANTHROPIC: json.dumps(
        {
            "id": "msg_pool",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": "pong"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 1},
        }
    ).encode(),
}


def _handler() -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A stand-in whose keys all start as 40-request buckets refilling 5 per second, until the
    benchmark configures its own."""
    upstream = PoolUpstream()
    upstream.configure({"tiers": {key: [40, 5.0] for key in KEYS}})
    return upstream.handle


def main() -> None:
    """`python -m bench.pool_upstream [--port N]`."""
    run_stand_in(__doc__.splitlines()[0] if __doc__ else None, _handler)


if __name__ == "__main__":
    main()
