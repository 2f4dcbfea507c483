"""What reading the model of every request costs the Worker: `topLevelModel`, the routing read.

`python -m bench.model_read [--reads N]` renders the Worker and serves it in workerd with a small
harness that runs the Worker's own `topLevelModel` (the read of the body's top-level `model`
without a parse) N times over a body, or `JSON.parse` as often (what the policy check's full
parse starts with), or nothing. Bodies of about 2 KB and 1 MB, the model last as the official
openai and anthropic SDKs write it (after `messages`, so the read walks the whole body), and 1 MB
in 8,000 messages (the most strings and structure to walk). workerd's own clock stands still
while code runs, so the cost is its CPU time (user + system, from /proc) over the N reads, less
that of a request that reads nothing, per read. Everything binds to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json

import httpx

from bench.load import process_cpu_seconds
from infra.cli.workerd import serve_worker
from infra.settings import load
from infra.worker.render import render_worker

MODEL = "gpt-4o-mini"
SIZES = {
    "2 KB": (2 * 1024, 1),
    "1 MB": (1024 * 1024, 1),
    "1 MB in 8000 messages": (1024 * 1024, 8000),
}
HARNESS = """
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const reads = Number(url.searchParams.get("reads"));
    const body = new Uint8Array(await request.arrayBuffer());
    let found = null;
    if (url.pathname === "/model") {
      for (let n = 0; n < reads; n++) found = topLevelModel(body);
    } else if (url.pathname === "/parse") {
      for (let n = 0; n < reads; n++) found = JSON.parse(new TextDecoder().decode(body)).model;
    }
    return Response.json({ found });
  },
};
"""


def _body(size: int, messages: int) -> bytes:
    """A chat-completion body of about `size` bytes in `messages` messages, its model last."""
    filler = "x" * max(0, size // messages - 80)
    turns = [{"role": "user", "content": filler} for _ in range(messages)]
    return json.dumps({"messages": turns, "model": MODEL, "stream": False}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--reads", type=int, default=200_000, help="reads of a 2 KB body; 1,000 times fewer at 1 MB"
    )
    reads = parser.parse_args().reads
    settings, _ = load({"accountId": "0" * 32, "providerKeys": {"openai": ["x"]}}, "bench")
    source = render_worker(settings).replace("export default {", "const aigwWorker = {", 1)
    with serve_worker(source + HARNESS, {}) as worker, httpx.Client(timeout=600) as client:
        pid = worker.process.pid

        def cpu_ms(path: str, body: bytes, count: int) -> float:
            before = process_cpu_seconds(pid) or 0.0
            answer = client.post(f"{worker.url}{path}?reads={count}", content=body)
            answer.raise_for_status()
            assert path == "/none" or answer.json()["found"] == MODEL
            return ((process_cpu_seconds(pid) or 0.0) - before) * 1000

        print(f"workerd pid {pid}; CPU per read, less a request that reads nothing")
        for label, (size, messages) in SIZES.items():
            body = _body(size, messages)
            count = reads if size < 100_000 else max(20, reads // 1000)
            for path in ("/model", "/parse", "/none"):
                cpu_ms(path, body, 3)  # warm-up: the JIT, the body's first copy
            idle = min(cpu_ms("/none", body, count) for _ in range(3))
            for path, name in (("/model", "topLevelModel"), ("/parse", "JSON.parse")):
                spent = min(cpu_ms(path, body, count) for _ in range(3)) - idle
                print(
                    f"{label} body ({len(body)} B), {name:10}: {count} reads, "
                    f"{spent / count * 1000:.1f} us of CPU per read"
                )


if __name__ == "__main__":
    main()
