"""`python -m bench.pool`: what a key pool makes of its keys' rate limits, under real load.

Four OpenAI keys whose limits are token buckets (three of 8 requests/s, one of 2: 26 requests/s
together, each bucket holding 5 s of its rate) sit behind a stand-in gateway
(`bench/pool_upstream.py`) that answers as OpenAI does: `x-ratelimit-*` on every answer, on a 429
`retry-after`, `retry-after-ms` and the `rate_limit_exceeded` body. Each target runs as several
isolates (separate workerd processes, each with its own view of the keys), and an open-loop load
(Poisson arrivals, each sent to an isolate at random) of 80% and then 150% of the pool's capacity
is offered to it: a warm-up, then a measured window. Clients do not retry (the load stays the
offered one); what they would do with the answers is in the figures:

- answered: the share of requests answered 200; goodput: answers per second over capacity;
- upstream attempts and upstream 429s per client request (the stand-in counts them);
- client 429s with and without `Retry-After`, and those whose `Retry-After` is later than the
  soonest time a key takes a request again (asked of the stand-in as the 429 arrives) plus 1 s;
- p50 and p99 latency of the answers.

Targets: aigw's Worker, the recipe (`bench/baseline_worker.js`), and LiteLLM's proxy with the
keys' limits typed in as `rpm` when it is installed (bench/requirements-litellm.txt, its own venv);
`--against REV` adds aigw's Worker as rendered at a git revision (`aigw@REV`), to compare with.

`--models` runs the scenarios of a gateway shared by several models instead (`bench/pool_models.py`:
three keys with a bucket per key and model, clients of different models at once), on aigw's
Worker and each `--against` revision.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import pool_models, targets
from bench.hotpath import _aigw_source
from bench.load import Target, chat_body, percentile
from bench.run import DEFAULT_OUTPUT, machine, running_upstream
from bench.upstream import KEYS

TIERS = {KEYS[0]: (40, 5.0), KEYS[1]: (40, 5.0), KEYS[2]: (40, 5.0), KEYS[3]: (10, 5.0)}
"""Each key's bucket: (requests it holds, seconds it takes to refill whole)."""
CAPACITY = sum(limit / window for limit, window in TIERS.values())
TARGET_NAMES = ("aigw", "baseline", "litellm")
GOALS = {
    0.8: "answered >= 99.5%, upstream 429s <= 0.01 per request",
    1.5: "goodput >= 0.95, attempts <= 1.10 per request, every client 429's Retry-After <= "
    "soonest + 1 s",
}


@dataclass
class Phase:
    """What one target did at one load, over the measured window."""

    samples: list[tuple[int, float]] = field(default_factory=list)
    """(status, seconds) of each request started in the window."""
    retry_after: Counter[str] = field(default_factory=Counter)
    """Client 429s: with Retry-After (and retry-after-ms), without, and late."""
    excess_s: list[float] = field(default_factory=list)
    upstream: Counter[str] = field(default_factory=Counter)

    def figures(self, load: float, measure_s: float) -> dict[str, object]:
        """The phase's figures, as printed and stored."""
        requests = max(len(self.samples), 1)
        statuses = Counter(str(status) for status, _ in self.samples)
        answered = statuses.get("200", 0)
        attempts = sum(self.upstream.values())
        ok_latency = [seconds for status, seconds in self.samples if status == 200]
        return {
            "load": load,
            "requests": len(self.samples),
            "answered_share": answered / requests,
            "goodput_over_capacity": answered / measure_s / CAPACITY,
            "upstream_attempts_per_request": attempts / requests,
            "upstream_429_per_request": self.upstream.get("429", 0) / requests,
            "client_statuses": dict(statuses),
            "client_429_with_retry_after": self.retry_after["with"],
            "client_429_with_retry_after_ms": self.retry_after["with_ms"],
            "client_429_without_retry_after": self.retry_after["without"],
            "client_429_retry_after_late": self.retry_after["late"],
            "retry_after_excess_max_s": max(self.excess_s) if self.excess_s else None,
            "p50_ms": percentile(ok_latency, 0.5) * 1000,
            "p99_ms": percentile(ok_latency, 0.99) * 1000,
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Run every target at every load; print the table; write the JSON and the plot."""
    args = _parser().parse_args(argv)
    output: Path = args.output_dir
    output.mkdir(parents=True, exist_ok=True)
    if args.models:
        return _main_models(args, output)
    results: dict[str, object] = {
        "command": " ".join(["python -m bench.pool", *(sys.argv[1:] if argv is None else argv)]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(args.litellm),
        "tiers": {key: {"limit": n, "window_s": window} for key, (n, window) in TIERS.items()},
        "capacity_rps": CAPACITY,
        "isolates": args.isolates,
        "warmup_s": args.warmup,
        "measure_s": args.measure,
        "latency_ms": args.latency,
    }
    measured: dict[str, object] = {}
    with running_upstream("bench.pool_upstream") as upstream_url:
        for name in [*args.targets, *(f"aigw@{revision}" for revision in args.against)]:
            print(f"{name}: starting {args.isolates if name != 'litellm' else 1} process(es)…")
            try:
                with _isolates(name, upstream_url, args) as isolates:
                    measured[name] = [
                        asyncio.run(_phase(isolates, upstream_url, load, args)).figures(
                            load, args.measure
                        )
                        for load in args.loads
                    ]
            except targets.Unavailable as why:
                print(f"{name} skipped: {why}")
                measured[name] = {"skipped": str(why)}
    results["targets"] = measured
    path = output / "pool.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    _print(measured)
    print(f"JSON: {path}")
    if not args.no_plot and plot(measured, output / "pool.png"):
        print(f"plot: {output / 'pool.png'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.pool", description=__doc__)
    parser.add_argument(
        "--targets",
        type=lambda text: tuple(text.split(",")),
        default=TARGET_NAMES,
        help=f"comma-separated subset of {','.join(TARGET_NAMES)}",
    )
    parser.add_argument(
        "--loads", type=lambda text: tuple(float(n) for n in text.split(",")), default=(0.8, 1.5)
    )
    parser.add_argument("--isolates", type=int, default=3, help="workerd processes per Worker")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="REV",
        help="also run aigw's Worker as rendered at this git revision (repeatable)",
    )
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--measure", type=float, default=60.0, help="seconds measured per load")
    parser.add_argument("--latency", type=float, default=50.0, help="ms a 200 takes upstream")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--models",
        action="store_true",
        help="run the scenarios of several models on one pool (bench/pool_models.py) instead",
    )
    parser.add_argument("--litellm", type=Path, default=targets.LITELLM_VENV / "bin" / "litellm")
    return parser


@contextlib.contextmanager
def _isolates(name: str, upstream_url: str, args: argparse.Namespace) -> Iterator[list[Target]]:
    """The target's processes: `--isolates` workerd processes for a Worker, one LiteLLM."""
    with contextlib.ExitStack() as stack:
        if name == "litellm":
            rpm = {key: round(limit / window * 60) for key, (limit, window) in TIERS.items()}
            yield [stack.enter_context(targets.litellm(upstream_url, args.litellm, rpm))]
            return
        start = (
            (lambda: _worker_at(name.partition("@")[2], upstream_url))
            if name.startswith("aigw@")
            else (lambda: targets.start_worker(name, upstream_url))
        )
        yield [stack.enter_context(start()) for _ in range(args.isolates)]


@contextlib.contextmanager
def _worker_at(
    revision: str | None, upstream_url: str, keys: Sequence[str] = KEYS
) -> Iterator[Target]:
    """aigw's Worker as rendered at `revision` (by that revision's own code; None: this tree's),
    in workerd, with `keys` in its pool."""
    from infra.cli.workerd import serve_worker
    from infra.worker.render import render_worker

    if revision is None:
        source = render_worker(targets.aigw_settings("aigw"), gateway_url=upstream_url)
    else:
        source = _aigw_source(revision).replace('"http://gw"', json.dumps(upstream_url), 1)
    bindings = {
        "OPENAI_API_KEYS": ",".join(keys),
        "CLIENT_TOKENS": f"{targets.CLIENT_NAME}:{targets.CLIENT_TOKEN}",
        "GATEWAY_TOKEN": targets.GATEWAY_TOKEN,
    }
    headers = {"authorization": f"Bearer {targets.CLIENT_TOKEN}"}
    with serve_worker(source, bindings) as worker:
        yield Target(f"aigw@{revision}", f"{worker.url}/v1/chat/completions", lambda _: headers)


async def _phase(
    isolates: list[Target], upstream_url: str, load: float, args: argparse.Namespace
) -> Phase:
    """Offer `load` times the capacity to the isolates: warm-up, then the measured window."""
    rng = random.Random(args.seed)
    phase = Phase()
    tiers = {key: list(tier) for key, tier in TIERS.items()}
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
    timeout = httpx.Timeout(30.0, connect=5.0)
    async with (
        httpx.AsyncClient(limits=limits, timeout=timeout) as client,
        httpx.AsyncClient(timeout=10.0) as admin,
    ):
        await admin.put(
            f"{upstream_url}/_bench/config", json={"tiers": tiers, "latency_ms": args.latency}
        )
        body = chat_body(False)
        started = time.perf_counter()
        window = (started + args.warmup, started + args.warmup + args.measure)
        before: dict[str, int] = {}
        tasks: set[asyncio.Task[None]] = set()

        async def one(target: Target, at: float) -> None:
            measured = window[0] <= at < window[1]
            try:
                answer = await client.post(target.url, json=body, headers=target.headers(0))
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            seconds = time.perf_counter() - at
            if not measured:
                return
            phase.samples.append((status, seconds))
            if status == 429:
                await _retry_after(answer, admin, upstream_url, phase)

        at = started
        while at < window[1]:
            at += rng.expovariate(load * CAPACITY)
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if not before and at >= window[0]:
                before = (await admin.get(f"{upstream_url}/_bench/stats")).json()["statuses"]
            if at >= window[1]:
                break
            task = asyncio.create_task(one(rng.choice(isolates), at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        after = (await admin.get(f"{upstream_url}/_bench/stats")).json()["statuses"]
        if tasks:
            await asyncio.wait(tasks, timeout=60)
    phase.upstream = Counter({s: after.get(s, 0) - before.get(s, 0) for s in after})
    return phase


async def _retry_after(
    answer: httpx.Response, admin: httpx.AsyncClient, upstream_url: str, phase: Phase
) -> None:
    """Count a client 429's Retry-After, and how much later it is than a key's next token."""
    value = answer.headers.get("retry-after")
    if value is None:
        phase.retry_after["without"] += 1
        return
    phase.retry_after["with"] += 1
    if "retry-after-ms" in answer.headers:
        phase.retry_after["with_ms"] += 1
    soonest = (await admin.get(f"{upstream_url}/_bench/soonest")).json()["seconds"]
    excess = (float(value) if value.strip().isdigit() else math.inf) - soonest
    phase.excess_s.append(excess)
    if excess > 1:
        phase.retry_after["late"] += 1


def _main_models(args: argparse.Namespace, output: Path) -> int:
    """`--models`: each scenario of `bench.pool_models` on aigw's Worker and each revision."""
    rows: list[dict[str, object]] = []
    # Fresh isolates for each scenario and target: what one scenario taught a pool (a key
    # refused a model) must not carry into the next.
    with running_upstream("bench.pool_upstream") as upstream_url:
        for scenario in pool_models.SCENARIOS:
            for name in ["aigw", *(f"aigw@{revision}" for revision in args.against)]:
                print(f"{scenario}, {name}: starting {args.isolates} process(es)…", flush=True)
                revision = name.partition("@")[2] or None
                keys = KEYS[: pool_models.KEYS]
                with contextlib.ExitStack() as stack:
                    isolates = [
                        stack.enter_context(_worker_at(revision, upstream_url, keys))
                        for _ in range(args.isolates)
                    ]
                    measured = asyncio.run(_models_phase(isolates, upstream_url, scenario, args))
                rows += [
                    {"target": name, "scenario": scenario, "isolates": args.isolates, **row}
                    for row in measured
                ]
    path = output / "pool_models.json"
    path.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2) + "\n")
    pool_models.print_table(rows)
    print(f"JSON: {path}")
    return 0


async def _models_phase(
    isolates: list[Target], upstream_url: str, scenario: str, args: argparse.Namespace
) -> list[dict[str, object]]:
    """Offer each client of `scenario` its load at once: warm-up, then the measured window."""
    rng = random.Random(args.seed)
    clients = pool_models.SCENARIOS[scenario]
    figures = [pool_models.ClientFigures() for _ in clients]
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
    timeout = httpx.Timeout(30.0, connect=5.0)
    large: dict[str, object] = {}
    async with (
        httpx.AsyncClient(limits=limits, timeout=timeout) as client,
        httpx.AsyncClient(timeout=10.0) as admin,
    ):
        config = {"tiers": {}, "models": scenario, "latency_ms": args.latency}
        await admin.put(f"{upstream_url}/_bench/config", json=config)
        started = time.perf_counter()
        window = (started + args.warmup, started + args.warmup + args.measure)
        tasks: set[asyncio.Task[None]] = set()

        async def one(index: int | None, target: Target, at: float, **extra: object) -> None:
            model = pool_models.MAIN if index is None else clients[index].model
            body = {"model": model, "messages": [{"role": "user", "content": "ping"}], **extra}
            try:
                answer = await client.post(target.url, json=body, headers=target.headers(0))
                status, code = answer.status_code, _error_code(answer)
            except httpx.HTTPError:
                status, code = 0, None
            if index is None:
                large["status"] = status
                return
            if not window[0] <= at < window[1]:
                return
            counted = figures[index]
            counted.requests += 1
            counted.statuses[str(status)] += 1
            if code is not None:
                counted.codes[code] += 1

        arrivals = [
            started + rng.expovariate(pool_models.offered_rate(scenario, c)) for c in clients
        ]
        large_at = window[0] + pool_models.LARGE_AT_S if scenario == "too-large" else math.inf
        before: dict[str, object] = {}
        while True:
            index = min(range(len(clients)), key=arrivals.__getitem__)
            at = min(arrivals[index], large_at)
            if at >= window[1]:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if not before and at >= window[0]:
                before = (await admin.get(f"{upstream_url}/_bench/stats")).json()
            if at == large_at:
                large_at = math.inf
                extra = {"max_tokens": pool_models.LARGE_TOKENS}
                task = asyncio.create_task(one(None, rng.choice(isolates), at, **extra))
            else:
                arrivals[index] += rng.expovariate(
                    pool_models.offered_rate(scenario, clients[index])
                )
                task = asyncio.create_task(one(index, rng.choice(isolates), at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        after = (await admin.get(f"{upstream_url}/_bench/stats")).json()
        if tasks:
            await asyncio.wait(tasks, timeout=60)
    rows = []
    for client_spec, counted in zip(clients, figures, strict=True):
        model = client_spec.model
        counted.attempts = after["attempts"].get(model, 0) - before["attempts"].get(model, 0)
        row = counted.summary(scenario, client_spec, args.measure)
        if scenario == "too-large":
            row["large_attempts"] = after["large_attempts"] - before["large_attempts"]
            row["large_status"] = large.get("status")
        rows.append(row)
    return rows


def _error_code(answer: httpx.Response) -> str | None:
    """The `error.code` of an error answer's JSON body, if any."""
    if answer.status_code < 400:
        return None
    try:
        error = answer.json().get("error")
    except ValueError:
        return None
    return str(error.get("code")) if isinstance(error, dict) else None


def _print(measured: dict[str, object]) -> None:
    columns = (
        "target",
        "load",
        "answered",
        "goodput",
        "attempts/req",
        "up 429/req",
        "client 429 (RA / no RA / late)",
        "p50 ms",
        "p99 ms",
    )
    rows = [columns]
    for name, phases in measured.items():
        if not isinstance(phases, list):
            continue
        for figures in phases:
            rows.append(
                (
                    name,
                    f"{figures['load']:.0%}",
                    f"{figures['answered_share']:.1%}",
                    f"{figures['goodput_over_capacity']:.2f}",
                    f"{figures['upstream_attempts_per_request']:.3f}",
                    f"{figures['upstream_429_per_request']:.3f}",
                    f"{figures['client_429_with_retry_after']} / "
                    f"{figures['client_429_without_retry_after']} / "
                    f"{figures['client_429_retry_after_late']}",
                    f"{figures['p50_ms']:.0f}",
                    f"{figures['p99_ms']:.0f}",
                )
            )
    widths = [max(len(row[n]) for row in rows) for n in range(len(columns))]
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    for load, goal in GOALS.items():
        print(f"goal at {load:.0%}: {goal}")


def plot(measured: dict[str, object], path: Path) -> bool:
    """Bars of each target's figures at each load; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ran = {name: phases for name, phases in measured.items() if isinstance(phases, list)}
    panels = (
        ("answered_share", "share answered 200", None),
        ("goodput_over_capacity", "goodput / capacity", 0.95),
        ("upstream_attempts_per_request", "upstream attempts per request", 1.10),
        ("upstream_429_per_request", "upstream 429s per request", 0.01),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(15, 4))
    names = list(ran)
    for axis, (key, label, goal) in zip(axes, panels, strict=True):
        loads = sorted({figures["load"] for phases in ran.values() for figures in phases})
        width = 0.8 / max(len(names), 1)
        for number, name in enumerate(names):
            values = {f["load"]: f[key] for f in ran[name]}
            xs = [index + number * width for index in range(len(loads))]
            axis.bar(xs, [values.get(load, 0) for load in loads], width, label=name)
        axis.set_xticks(
            [index + width * (len(names) - 1) / 2 for index in range(len(loads))],
            [f"{load:.0%} of capacity" for load in loads],
        )
        if goal is not None:
            axis.axhline(goal, color="k", linestyle=":", linewidth=1)
        axis.set_title(label)
        axis.grid(True, axis="y", alpha=0.3)
    axes[0].legend()
    figure.suptitle(
        f"Four keys of {CAPACITY:g} requests/s together (mixed tiers), 3 isolates per Worker, "
        "open-loop load; dotted: issue 16's goals"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


if __name__ == "__main__":
    raise SystemExit(main())
