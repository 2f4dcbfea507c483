"""The benchmark's client: bounded batches of chat completions at a fixed concurrency, timed."""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from bench.upstream import MODEL

REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_STAMP = re.compile(r"(\d+):(\d+)")
WARMUP_PER_USER = 3


@dataclass(frozen=True)
class Target:
    """One way of reaching the fake gateway: a chat-completions URL and how to authenticate."""

    name: str
    url: str
    headers: Callable[[int], Mapping[str, str]]
    """The headers of the n-th request (the direct client rotates keys itself)."""
    pid: int | None = None
    """The proxy's process, whose CPU time is measured; `None` for direct calls."""


@dataclass
class Sample:
    """One request as the client saw it."""

    status: int
    seconds: float
    first_chunk: float | None = None
    gap_deviations: list[float] = field(default_factory=list)
    """For each streamed chunk after the first: |gap as received - gap as sent|, in seconds."""
    chunks: int = 0


@dataclass
class Batch:
    """A batch of requests at one concurrency: its samples, wall time and the proxy's CPU time."""

    samples: list[Sample]
    wall_seconds: float
    cpu_seconds: float | None


def chat_body(stream: bool) -> dict[str, object]:
    """The request every target gets: one short message, streamed or not."""
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "ping"}],
        "stream": stream,
    }


async def run_batch(
    target: Target,
    *,
    count: int,
    concurrency: int,
    stream: bool,
    when_warm: Callable[[], Awaitable[object]] | None = None,
) -> Batch:
    """Send `count` requests from `concurrency` clients, each warmed up first (not recorded).

    Each simulated user has its own httpx client and keep-alive connection, as separate
    applications would: one shared pool for 64 users spends more time in its own bookkeeping than
    the proxies under test do. `when_warm` runs after the warm-up, before the measured requests.
    """
    serial = itertools.count()
    remaining = iter(range(count))
    samples: list[Sample] = []
    users = min(concurrency, count)
    warm = asyncio.Barrier(users + 1)
    go = asyncio.Event()
    send = _stream_one if stream else _call_one

    async def user() -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT) as client:
            # Warm-up opens the connection and lets the proxy's JIT settle.
            for _ in range(WARMUP_PER_USER):
                await _call_one(client, target, next(serial))
            await warm.wait()
            await go.wait()
            for _ in remaining:
                samples.append(await send(client, target, next(serial)))

    users_done = asyncio.gather(*(user() for _ in range(users)))
    try:
        await warm.wait()
        if when_warm is not None:
            await when_warm()
        # The client's own cyclic garbage collector stays off while requests are timed: a full
        # collection of the benchmark's heap pauses every simulated user for tens of ms on a busy
        # machine, a stall that would be charged to whichever target happened to be running.
        gc.collect()
        gc.disable()
        cpu_before = process_cpu_seconds(target.pid)
        started = time.perf_counter()
        go.set()
        await users_done
    finally:
        gc.enable()
        go.set()
        users_done.cancel()
    wall = time.perf_counter() - started
    cpu_after = process_cpu_seconds(target.pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Batch(samples, wall, cpu)


async def _call_one(client: httpx.AsyncClient, target: Target, serial: int) -> Sample:
    started = time.perf_counter()
    try:
        response = await client.post(
            target.url, json=chat_body(False), headers=target.headers(serial)
        )
        body = response.content
    except httpx.HTTPError:
        return Sample(status=0, seconds=time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    status = response.status_code
    # A 200 that is not a completion would be a proxy bug; count it as a failure.
    if status == 200 and b'"choices"' not in body:
        status = -1
    return Sample(status=status, seconds=elapsed)


async def _stream_one(client: httpx.AsyncClient, target: Target, serial: int) -> Sample:
    started = time.perf_counter()
    received: list[tuple[float, int, int]] = []
    try:
        async with client.stream(
            "POST", target.url, json=chat_body(True), headers=target.headers(serial)
        ) as response:
            status = response.status_code
            async for line in response.aiter_lines():
                now = time.perf_counter()
                # The stamp is in the chunk's content, which every proxy passes through.
                match = _STAMP.search(line) if line.startswith("data:") else None
                if match:
                    received.append((now, int(match[1]), int(match[2])))
    except httpx.HTTPError:
        return Sample(status=0, seconds=time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    deviations = [
        abs((now - prev_now) - (sent - prev_sent) / 1e6)
        for (prev_now, _, prev_sent), (now, _, sent) in itertools.pairwise(received)
    ]
    indexes = [index for _, index, _ in received]
    if status == 200 and indexes != list(range(len(indexes))):
        status = -1  # chunks lost or reordered
    return Sample(
        status=status,
        seconds=elapsed,
        first_chunk=received[0][0] - started if received else None,
        gap_deviations=deviations,
        chunks=len(received),
    )


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1) of `values`; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def process_cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU seconds `pid` has used so far, with its threads; `None` if unknown."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The command name (field 2) may hold spaces; count fields after its closing ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")
