"""`python -m bench.profile`: V8 CPU profiles of the Workers under one load, top entries printed.

Each Worker target (aigw and the recipe) is served in workerd with its V8 inspector open on
loopback; over the Chrome DevTools protocol the profiler samples it while the benchmark's client
sends the same non-streaming requests to each. The top self-time entries of each profile are
printed, and the profiles are written as `.cpuprofile` files (they open in Chrome DevTools'
Performance panel). Sampling slows a Worker down several times over, so the shares matter here,
not the speed; `python -m bench` measures speed without the inspector.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import targets
from bench.load import Target, run_batch
from bench.run import DEFAULT_OUTPUT, running_upstream

WORKER_TARGETS = targets.WORKER_TARGET_NAMES
SAMPLING_INTERVAL_US = 100
"""V8's sampling interval: short enough for thousands of samples, long enough to stay cheap."""
WARMUP_REQUESTS = 300
"""Requests before the profile starts, so the JIT has settled as in a long-lived isolate."""
IDLE = frozenset({"(idle)", "(root)"})
"""Samples of a thread with nothing to do; `(program)` (V8 and workerd outside JavaScript) and
`(garbage collector)` are work and count."""


@dataclass(frozen=True)
class Entry:
    """One function's share of a profile's samples."""

    name: str
    where: str
    self_share: float
    """Samples in this function itself, of all the busy samples (idle excluded)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Profile each selected Worker; print each profile's top entries; return 0."""
    args = _parser().parse_args(argv)
    output: Path = args.output_dir
    output.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {}
    with running_upstream() as upstream_url:
        for name in args.targets:
            with _serve(name, upstream_url) as (target, inspector_port):
                profile = asyncio.run(
                    _profile(target, inspector_port, args.requests, args.concurrency)
                )
            path = output / f"{name}.cpuprofile"
            path.write_text(json.dumps(profile))
            entries, busy = top_entries(profile, args.top)
            busy_ms = busy_ms_per_request(profile, args.requests)
            summary[name] = {
                "busy_share": busy,
                "busy_ms_per_request": busy_ms,
                "top": [entry.__dict__ for entry in entries],
                "profile": str(path),
            }
            print(
                f"\n{name}: busy {busy:.0%} of samples, {busy_ms:.2f} ms per request under the "
                "profiler; top self time of the busy samples"
            )
            for entry in entries:
                print(f"  {entry.self_share:6.1%}  {entry.name}  {entry.where}")
    (output / "profiles.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "--targets",
        type=lambda text: tuple(text.split(",")),
        default=WORKER_TARGETS,
        help=f"comma-separated subset of {','.join(WORKER_TARGETS)} (default: all)",
    )
    parser.add_argument("--requests", type=int, default=3000, help="profiled requests per target")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--top", type=int, default=20, help="entries printed per profile")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    return parser


@contextlib.contextmanager
def _serve(name: str, upstream_url: str) -> Iterator[tuple[Target, int]]:
    port = targets.free_port()
    starter: AbstractContextManager[Target] = targets.start_worker(
        name, upstream_url, inspector_port=port
    )
    with starter as target:
        yield target, port


async def _profile(
    target: Target, inspector_port: int, requests: int, concurrency: int
) -> dict[str, Any]:
    """Warm the Worker up, then sample it over `requests` requests; the profile as V8 gives it."""
    import websockets  # the benchmark's own dependency (requirements-bench.txt)

    async with httpx.AsyncClient() as client:
        listing = (await client.get(f"http://127.0.0.1:{inspector_port}/json")).json()
    async with websockets.connect(listing[0]["webSocketDebuggerUrl"], max_size=None) as socket:
        serial = 0

        async def call(method: str, **params: object) -> dict[str, Any]:
            nonlocal serial
            serial += 1
            await socket.send(json.dumps({"id": serial, "method": method, "params": params}))
            while True:
                message: dict[str, Any] = json.loads(await socket.recv())
                if message.get("id") == serial:
                    return message

        await call("Profiler.enable")
        await call("Profiler.setSamplingInterval", interval=SAMPLING_INTERVAL_US)
        await run_batch(target, count=WARMUP_REQUESTS, concurrency=concurrency, stream=False)
        await call("Profiler.start")
        await run_batch(target, count=requests, concurrency=concurrency, stream=False)
        stopped = await call("Profiler.stop")
    profile: dict[str, Any] = stopped["result"]["profile"]
    return profile


def top_entries(profile: dict[str, Any], count: int) -> tuple[list[Entry], float]:
    """The `count` functions with the most self time, and the busy share of all samples."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    per_node = collections.Counter(profile.get("samples", []))
    total = sum(per_node.values()) or 1
    per_function: collections.Counter[tuple[str, str]] = collections.Counter()
    for node_id, samples in per_node.items():
        frame = nodes[node_id]["callFrame"]
        name = frame["functionName"] or "(anonymous)"
        url = frame["url"].rsplit("/", 1)[-1]
        where = f"{url}:{frame['lineNumber'] + 1}" if url else "(native)"
        per_function[(name, where)] += samples
    busy = sum(n for (name, _), n in per_function.items() if name not in IDLE)
    entries = [
        Entry(name, where, samples / (busy or 1))
        for (name, where), samples in per_function.most_common()
        if name not in IDLE
    ]
    return entries[:count], busy / total


def busy_ms_per_request(profile: dict[str, Any], requests: int) -> float:
    """Sampled time outside `IDLE` per request, in ms (inflated by the profiler itself)."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    busy_us = sum(
        delta
        for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True)
        if nodes[node_id]["callFrame"]["functionName"] not in IDLE
    )
    return float(busy_us) / 1000 / requests


if __name__ == "__main__":
    sys.exit(main())
