"""`python -m bench.hotpath`: the Workers' own work per request, their upstream fetch stubbed.

One workerd isolate holds aigw's rendered Worker (and, with `--against REV`, the same Worker
rendered from the template at a git revision), the recipe Worker and a null Worker that only
answers. Each is called in a loop inside the isolate with the benchmark's request, `fetch`
answering at once with a canned completion, so no network, client or fake gateway is measured:
only what each Worker does per request. The Workers take turns, round after round, and the medians
of workerd's CPU time per call are printed; minus the null Worker's, that is each Worker's own
cost. On a busy machine this is far steadier than end-to-end timings, which are mostly the
client's and the kernel's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.load import chat_body, process_cpu_seconds
from bench.targets import BASELINE_SOURCE, CLIENT_NAME, CLIENT_TOKEN, GATEWAY_TOKEN, aigw_settings
from bench.upstream import KEYS
from infra.cli.workerd import serve_worker
from infra.worker import render

REPO_ROOT = Path(__file__).resolve().parent.parent
NULL = "null"
RECIPE = "baseline"

_HARNESS = """
const COMPLETION = %(completion)s;
const ANSWER_HEADERS = %(answer_headers)s;
// Every Worker's upstream: answers at once, as a fast gateway would.
async function stubFetch() {
  return new Response(COMPLETION, { headers: ANSWER_HEADERS });
}
const null_ = { async fetch() { return new Response(COMPLETION); } };
%(workers)s
const WORKERS = new Map(Object.entries({ %(names)s }));
const BODY = %(body)s;
const HEADERS = {
  authorization: %(authorization)s,
  "content-type": "application/json",
  "content-length": String(new TextEncoder().encode(BODY).byteLength),
  accept: "application/json",
  "accept-encoding": "gzip, deflate",
  "user-agent": "OpenAI/Python 1.0",
  "x-stainless-lang": "python",
};
// With --analytics, an Analytics Engine binding that keeps the last data point: the Worker's own
// work for its events is measured (the event, the point, the call), not workerd's delivery.
let lastPoint = null;
const ENV = %(env)s;
if (%(analytics)s) {
  ENV.ANALYTICS = { writeDataPoint(point) { lastPoint = point; } };
}

export default {
  async fetch(request) {
    const query = new URL(request.url).searchParams;
    const worker = WORKERS.get(query.get("worker"));
    const calls = Number(query.get("calls"));
    let ok = 0;
    for (let call = 0; call < calls; call++) {
      const init = { method: "POST", headers: HEADERS, body: BODY };
      const answer = await worker.fetch(new Request("http://aigw/v1/chat/completions", init), ENV);
      await answer.arrayBuffer();
      ok += answer.status === 200 ? 1 : 0;
    }
    return new Response(String(ok));
  },
};
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each Worker's CPU per call; print the medians and the ratios to the recipe."""
    args = _parser().parse_args(argv)
    workers = {"aigw": _aigw_source(None)}
    for revision in args.against:
        workers[f"aigw@{revision}"] = _aigw_source(revision)
    workers[RECIPE] = BASELINE_SOURCE.read_text().replace("__TARGET_BASE__", "http://gw/openai")
    names = [*workers, NULL]
    cpu: dict[str, list[float]] = {name: [] for name in names}
    module = harness(workers, args.rate_limit_headers, args.analytics)
    with serve_worker(module, {}) as worker, httpx.Client(timeout=600) as client:

        def run(name: str, calls: int) -> float:
            before = process_cpu_seconds(worker.process.pid) or 0.0
            answer = client.get(worker.url, params={"worker": name, "calls": calls})
            if answer.text != str(calls):
                raise SystemExit(f"{name}: {answer.text} of {calls} calls answered 200")
            return ((process_cpu_seconds(worker.process.pid) or 0.0) - before) * 1e6 / calls

        for name in names:
            run(name, args.calls // 5)  # warm-up: the JIT settles before anything is timed
        for turn in range(args.rounds):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                cpu[name].append(run(name, args.calls))
    # The least disturbed round is the best estimate of the work itself (other processes only ever
    # add to it); the median shows how steady the rounds were.
    best = {name: min(values) for name, values in cpu.items()}
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"workerd CPU µs per call over {args.rounds} rounds of {args.calls} calls:")
    for name in names:
        print(
            f"  {name:<24} best {best[name]:7.1f}  median {medians[name]:7.1f}  "
            f"best minus {NULL} {best[name] - best[NULL]:7.1f}"
        )
    for name in workers:
        if name != RECIPE:
            extra = best[name] - best[RECIPE]
            print(f"{name} - {RECIPE}: {extra:.1f} µs of CPU more per call (best rounds)")
    if args.json:
        figures = {"cpu_us": cpu, "best": best, "median": medians}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="calls per Worker per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="REV",
        help="also measure the Worker from worker_template/ at this git revision (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="write every round's figures here")
    parser.add_argument(
        "--analytics",
        action="store_true",
        help="give the Workers an Analytics Engine binding (a stub that keeps the last data "
        "point), so the cost of writing the Worker's events is in the figures",
    )
    parser.add_argument(
        "--rate-limit-headers",
        action="store_true",
        help="the stubbed upstream answers with OpenAI's x-ratelimit-* headers, as OpenAI does",
    )
    return parser


RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "5000",
    "x-ratelimit-limit-tokens": "800000",
    "x-ratelimit-remaining-requests": "4999",
    "x-ratelimit-remaining-tokens": "799990",
    "x-ratelimit-reset-requests": "12ms",
    "x-ratelimit-reset-tokens": "0s",
}
"""What OpenAI's answers carry (`--rate-limit-headers`): every one is read by aigw's Worker."""


def harness(
    workers: dict[str, str], rate_limit_headers: bool = False, analytics: bool = False
) -> str:
    """One module holding each Worker, its `fetch` stubbed, and a handler that loops over one.

    With `rate_limit_headers`, the stub answers with OpenAI's rate-limit headers, as real ones
    do; without, with its content type only."""
    wrapped = []
    for number, source in enumerate(workers.values()):
        # Each Worker in its own function scope: its top-level names stay its own, and `fetch`
        # inside it is the stub. Its default export becomes the function's result.
        body = source.replace("export default {", "const exported = {", 1)
        scope = f"((fetch) => {{\n{body}\nreturn exported;\n}})(stubFetch)"
        wrapped.append(f"const worker{number} = {scope};")
    names = [f"{json.dumps(name)}: worker{number}" for number, name in enumerate(workers)]
    names.append(f"{json.dumps(NULL)}: null_")
    completion = {"id": "chatcmpl-bench", "object": "chat.completion", "choices": []}
    env = {
        "OPENAI_API_KEYS": ",".join(KEYS),
        "CLIENT_TOKENS": f"{CLIENT_NAME}:{CLIENT_TOKEN}",
        "GATEWAY_TOKEN": GATEWAY_TOKEN,
    }
    return _HARNESS % {
        "completion": json.dumps(json.dumps(completion)),
        "answer_headers": json.dumps(
            {"content-type": "application/json"}
            | (RATE_LIMIT_HEADERS if rate_limit_headers else {})
        ),
        "workers": "\n".join(wrapped),
        "names": ", ".join(names),
        "body": json.dumps(json.dumps(chat_body(False))),
        "authorization": json.dumps(f"Bearer {CLIENT_TOKEN}"),
        "env": json.dumps(env),
        "analytics": json.dumps(analytics),
    }


def _aigw_source(revision: str | None) -> str:
    """aigw's Worker as the benchmark renders it, from the tree now or at `revision`.

    A revision's Worker is rendered by that revision's own code (its template, model and
    renderer, exported whole to a scratch folder), since a template needs the render context of
    its own time: today's renderer cannot fill an older template, nor the other way round.
    """
    if revision is None:
        return render.render_worker(aigw_settings("aigw"), gateway_url="http://gw")
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", revision], capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="aigw-hotpath-") as directory:
        subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
        return subprocess.run(
            [sys.executable, "-c", _RENDER_AT_REVISION],
            cwd=directory,
            env={**os.environ, "PYTHONPATH": directory},
            capture_output=True,
            text=True,
            check=True,
        ).stdout


_RENDER_AT_REVISION = (
    "from bench.targets import aigw_settings; from infra.worker import render; "
    "print(render.render_worker(aigw_settings('aigw'), gateway_url='http://gw'), end='')"
)
"""Run in a revision's exported tree: prints the bench's aigw Worker as that revision renders it."""


if __name__ == "__main__":
    sys.exit(main())
