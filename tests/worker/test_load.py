"""Hundreds of concurrent requests and streams through one Worker in workerd."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack

import httpx

from infra.cli.workerd import RunningWorker
from tests.upstream import FakeGateway
from tests.worker.conftest import OPENAI_KEYS, TOKEN

PLAIN = 300
STREAMS = 100
CHUNKS = 8
CLIENTS = 10
CONNECTIONS = 25
"""Per client: httpx's connection pool does work quadratic in its size, so the load is spread over
several small pools, 250 connections in all, enough to overlap every stream with the rest."""


async def _plain(client: httpx.AsyncClient, number: int) -> str:
    body = {"model": "gpt-test", "messages": [], "user": f"plain-{number}"}
    answer = await client.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["choices"][0]["message"]["content"])


async def _stream(client: httpx.AsyncClient, number: int) -> list[str]:
    body = {"model": "gpt-test", "messages": [], "stream": True, "user": f"stream-{number}"}
    events = []
    async with client.stream("POST", "/v1/chat/completions", json=body) as answer:
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    return events


async def _run(url: str) -> tuple[list[str], list[list[str]]]:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=url,
                    headers={"authorization": f"Bearer {TOKEN}"},
                    limits=limits,
                    timeout=60,
                )
            )
            for _ in range(CLIENTS)
        ]
        streams = [asyncio.create_task(_stream(clients[n % CLIENTS], n)) for n in range(STREAMS)]
        plains = [asyncio.create_task(_plain(clients[n % CLIENTS], n)) for n in range(PLAIN)]
        return await asyncio.gather(*plains), await asyncio.gather(*streams)


def test_concurrent_requests_and_streams_are_all_served_whole(
    worker: RunningWorker, upstream: FakeGateway
) -> None:
    """300 requests and 100 streams at once: none lost, none truncated, keys used evenly."""
    upstream.stream_chunks = CHUNKS
    upstream.chunk_delay = 0.005
    plains, streams = asyncio.run(_run(worker.url))

    assert plains == ["Hello from the fake gateway."] * PLAIN
    for events in streams:
        assert events[-1] == "[DONE]"
        contents = [
            json.loads(event)["choices"][0]["delta"].get("content") for event in events[:-1]
        ]
        assert contents == [f"tok{n} " for n in range(CHUNKS)] + [None]
    # Each request reached the upstream exactly once (no failover was needed, none was lost).
    users = sorted(str(request.json()["user"]) for request in upstream.requests)  # type: ignore[index]  # json() is typed as object
    expected = sorted(
        [f"plain-{n}" for n in range(PLAIN)] + [f"stream-{n}" for n in range(STREAMS)]
    )
    assert users == expected
    counts = upstream.key_counts()
    assert set(counts) == set(OPENAI_KEYS)
    fair = (PLAIN + STREAMS) / len(OPENAI_KEYS)
    assert all(0.8 * fair <= count <= 1.2 * fair for count in counts.values()), counts
