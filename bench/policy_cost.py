"""What a client policy costs the Worker per request: the body parsed to find the model, the
endpoint looked up.

`python -m bench.policy_cost [--requests N]` serves the rendered Worker in workerd in front of the
benchmark's fake gateway with three clients, `listed` (a `models` policy), `budget` (a budget
alone: its endpoint is looked up, its body not read) and `free` (no policy), and
sends each the same chat-completion bodies of about 2 KB and 1 MB (one long message, and the same
size as 8,000 short messages, the most keys and strings the policy's repeated-key check scans),
one request at a time, in alternating rounds. It prints, per client and body, the median latency
and workerd's CPU time per request (user + system, from /proc); the difference between the two
clients is what the policy's reading of the body costs.
Everything binds to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

from bench.load import process_cpu_seconds
from bench.run import running_upstream
from bench.upstream import KEYS, MODEL
from infra.cli.workerd import serve_worker
from infra.settings import load
from infra.worker.render import render_worker

TOKENS = {
    "listed": "tok-bench-listed-01",
    "budget": "tok-bench-budget-01",
    "free": "tok-bench-free-0001",
}
SIZES = {
    "2 KB": (2 * 1024, 1),
    "1 MB": (1024 * 1024, 1),
    "1 MB in 8000 messages": (1024 * 1024, 8000),
}
ROUNDS = 5


def _body(size: int, messages: int) -> bytes:
    """A chat-completion body of about `size` bytes in `messages` messages, its model first as
    SDKs write it."""
    filler = "x" * max(0, size // messages - 80)
    turns = [{"role": "user", "content": filler} for _ in range(messages)]
    return json.dumps({"model": MODEL, "messages": turns}).encode()


def _cpu(pid: int) -> float:
    """workerd's CPU seconds so far; it is alive while it is measured, so never unknown."""
    seconds = process_cpu_seconds(pid)
    assert seconds is not None
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="per client at 2 KB")
    requests = parser.parse_args().requests
    with running_upstream() as upstream_url:
        settings, _ = load(
            {
                "accountId": "0" * 32,
                "providerKeys": {"openai": list(KEYS)},
                "clientTokens": TOKENS,
                "clients": {
                    "listed": {"models": ["gpt-4o", MODEL, "claude-*"]},
                    "budget": {"budget": {"limit": 100, "window": 86400}},
                },
            },
            "bench",
        )
        source = render_worker(settings, gateway_url=upstream_url)
        bindings = {
            "OPENAI_API_KEYS": ",".join(KEYS),
            "CLIENT_TOKENS": " ".join(f"{name}:{token}" for name, token in TOKENS.items()),
        }
        with serve_worker(source, bindings) as worker, httpx.Client(timeout=60) as client:
            url = f"{worker.url}/v1/chat/completions"
            pid = worker.process.pid
            print(f"workerd pid {pid}; {requests} requests per client at 2 KB, fewer at 1 MB")
            for label, (size, messages) in SIZES.items():
                body = _body(size, messages)
                count = requests if size < 100_000 else max(10, requests // 10)
                per_round = max(1, count // ROUNDS)
                latency: dict[str, list[float]] = {name: [] for name in TOKENS}
                cpu: dict[str, float] = dict.fromkeys(TOKENS, 0.0)
                headers = {name: {"authorization": f"Bearer {t}"} for name, t in TOKENS.items()}
                for name in TOKENS:  # warm-up, not recorded
                    for _ in range(3):
                        client.post(url, content=body, headers=headers[name]).raise_for_status()
                for _ in range(ROUNDS):
                    for name in TOKENS:
                        before = _cpu(pid)
                        for _ in range(per_round):
                            started = time.perf_counter()
                            answer = client.post(url, content=body, headers=headers[name])
                            latency[name].append(time.perf_counter() - started)
                            answer.raise_for_status()
                        cpu[name] += _cpu(pid) - before
                for name in TOKENS:
                    done = len(latency[name])
                    print(
                        f"{label} body ({len(body)} B), client {name:6}: {done} requests, "
                        f"median {statistics.median(latency[name]) * 1000:.2f} ms, "
                        f"workerd CPU {cpu[name] / done * 1000:.3f} ms/request"
                    )


if __name__ == "__main__":
    main()
