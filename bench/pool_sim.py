"""`python -m bench.pool_sim`: the key pool projected to many isolates, in virtual time.

The Python model of the Worker (`infra/worker/`, whose decisions the conformance vectors
hold equal to the Worker's) runs as N isolates, each an `Isolate` with its own key pool, all
reading one virtual clock through the model's injectable `clock_ms`. Open-loop Poisson arrivals
at a share of the pool's capacity are spread at random over the isolates; each upstream attempt
takes a token from the key's bucket (`bench/pool_keys.py`) at that virtual instant and is
answered with the provider's headers. Nothing waits for real, so 1,000 isolates and 50 keys take
seconds.

One isolate sees every answer, as all isolates would with shared state (a Durable Object per key):
its figures are what shared state could at best buy, before its round trip is paid. `--against REV`
runs the same scenarios with the model as it was at a git revision, for comparison.

`--models` runs the scenarios of several models on one pool instead (`bench/pool_models.py`: a
model at 3x its capacity beside one at 60%, a key that may not use a model, a request too large
for every key), at each `--isolates` count.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from bench import pool_models
from bench.pool_keys import OPENAI, BucketKey, Tier

if TYPE_CHECKING:
    from infra.worker.config import UpstreamRequest, UpstreamResponse, WorkerConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_ROOT = "AIGW_POOL_SIM_MODEL_ROOT"
"""Where `infra` is imported from: a revision's exported tree with `--against` (this one else);
imported late, so that this script's own modules stay today's."""


def _model() -> Any:
    """The Worker's model (`Isolate` and the types it takes), from MODEL_ROOT when set. A revision
    from before the model was split by concern (issue 23) has them all in `infra.worker.model`."""
    root = os.environ.get(MODEL_ROOT)
    if root and root not in sys.path:
        sys.path.insert(0, root)
    try:
        config = importlib.import_module("infra.worker.config")
    except ModuleNotFoundError:
        return importlib.import_module("infra.worker.model")
    worker = importlib.import_module("infra.worker.worker")
    return SimpleNamespace(
        Isolate=worker.Isolate,
        WorkerConfig=config.WorkerConfig,
        ClientRequest=config.ClientRequest,
        UpstreamResponse=config.UpstreamResponse,
    )


TOKEN = "sim-client-token-0001"
BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ping"}]})
BIG = Tier(40, 5.0)
SMALL = Tier(10, 5.0)
"""The benchmark's tiers: 8 and 2 requests per second, buckets holding 5 s of each."""


@dataclass(frozen=True)
class Scenario:
    """One simulated run: the pool, the isolates, the load and how long."""

    tiers: tuple[Tier, ...]
    isolates: int
    load: float
    """Offered requests per second over the pool's capacity."""
    warmup_s: float = 120.0
    measure_s: float = 60.0
    seed: int = 16

    @property
    def capacity(self) -> float:
        """Requests per second the pool takes in the long run."""
        return sum(tier.per_second for tier in self.tiers)


@dataclass
class Figures:
    """What one run counted over its measured part."""

    requests: int = 0
    answered: int = 0
    attempts: int = 0
    upstream_429: int = 0
    client_statuses: Counter[int] = field(default_factory=Counter)
    client_429_with_retry_after: int = 0
    retry_after_late: int = 0
    """Client 429s whose Retry-After is later than the soonest token of any key plus 1 s."""
    retry_after_excess_s: list[float] = field(default_factory=list)

    def summary(self, scenario: Scenario) -> dict[str, float | int]:
        """The figures as printed and stored."""
        requests = max(self.requests, 1)
        refused = self.client_statuses[429]
        excess = sorted(self.retry_after_excess_s)
        return {
            "requests": self.requests,
            "answered_share": self.answered / requests,
            "goodput_over_capacity": self.answered / scenario.measure_s / scenario.capacity,
            "attempts_per_request": self.attempts / requests,
            "upstream_429_per_request": self.upstream_429 / requests,
            "client_429": refused,
            "client_429_with_retry_after": self.client_429_with_retry_after,
            "client_429_retry_after_late": self.retry_after_late,
            "retry_after_excess_p99_s": excess[max(0, math.ceil(0.99 * len(excess)) - 1)]
            if excess
            else math.nan,
        }


def mixed_tiers(keys: int) -> tuple[Tier, ...]:
    """`keys` keys, three of 8 requests/s to one of 2, as in the live benchmark."""
    return tuple(SMALL if index % 4 == 3 else BIG for index in range(keys))


def config(keys: int) -> tuple[WorkerConfig, dict[str, str]]:
    """The Worker's configuration and bindings for a pool of `keys` keys."""
    model = _model()
    load = importlib.import_module("infra.settings").load
    names = [f"sk-sim-{index:03d}" for index in range(keys)]
    settings, _ = load(
        {
            "accountId": "0" * 32,
            "providerKeys": {"openai": names},
            "clientTokens": {"sim": TOKEN},
        },
        "sim",
    )
    bindings = {"OPENAI_API_KEYS": ",".join(names), "CLIENT_TOKENS": f"sim:{TOKEN}"}
    return model.WorkerConfig.from_settings(settings, gateway_url="http://gateway"), bindings


def run(scenario: Scenario) -> dict[str, float | int]:
    """Simulate `scenario`; return its figures."""
    rng = random.Random(scenario.seed)
    model = _model()
    worker_config, bindings = config(len(scenario.tiers))
    names = bindings["OPENAI_API_KEYS"].split(",")
    buckets = {
        name: BucketKey(name, tier) for name, tier in zip(names, scenario.tiers, strict=True)
    }
    now_ms = [0.0]
    isolates = [
        model.Isolate(worker_config, bindings, clock_ms=lambda: int(now_ms[0]))
        for _ in range(scenario.isolates)
    ]
    for isolate in isolates:
        # A random start per isolate, as deployed Workers have.
        isolate.offset = rng.randrange(2**32)
    figures = Figures()
    measuring = [False]

    def send(request: UpstreamRequest) -> UpstreamResponse:
        key = request.headers["authorization"].removeprefix("Bearer ")
        bucket = buckets[key]
        at = now_ms[0] / 1000
        if measuring[0]:
            figures.attempts += 1
        if bucket.take(at):
            return model.UpstreamResponse(200, bucket.headers(OPENAI, at, at), b'{"choices":[]}')
        if measuring[0]:
            figures.upstream_429 += 1
        headers, body = bucket.refusal(OPENAI, at, at)
        return model.UpstreamResponse(429, headers, body)

    request = model.ClientRequest(
        "POST",
        "/v1/chat/completions",
        {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
        BODY.encode(),
    )
    rate = scenario.load * scenario.capacity
    end = scenario.warmup_s + scenario.measure_s
    t = 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= end:
            break
        now_ms[0] = t * 1000
        measuring[0] = t >= scenario.warmup_s
        response = rng.choice(isolates).handle(request, send)
        if not measuring[0]:
            continue
        figures.requests += 1
        figures.client_statuses[response.status] += 1
        if response.status == 200:
            figures.answered += 1
        elif response.status == 429:
            retry_after = response.headers.get("retry-after")
            if retry_after is not None:
                figures.client_429_with_retry_after += 1
                soonest = min(bucket.next_token_s(t) for bucket in buckets.values())
                excess = float(retry_after) - soonest
                figures.retry_after_excess_s.append(excess)
                if excess > 1:
                    figures.retry_after_late += 1
    return figures.summary(scenario)


def run_models(
    name: str, isolates: int, warmup_s: float, measure_s: float, seed: int
) -> list[dict[str, object]]:
    """Simulate one scenario of `bench.pool_models` (several models on one pool); return each
    client's figures, the large request's upstream attempts with them."""
    rng = random.Random(seed)
    model = _model()
    worker_config, bindings = config(pool_models.KEYS)
    names = tuple(bindings["OPENAI_API_KEYS"].split(","))
    keys = pool_models.Keys(name, names)
    now_ms = [0.0]
    pool = [
        model.Isolate(worker_config, bindings, clock_ms=lambda: int(now_ms[0]))
        for _ in range(isolates)
    ]
    for isolate in pool:
        isolate.offset = rng.randrange(2**32)
    clients = pool_models.SCENARIOS[name]
    figures = [pool_models.ClientFigures() for _ in clients]
    current: list[pool_models.ClientFigures | None] = [None]

    def send(request: UpstreamRequest) -> UpstreamResponse:
        key = request.headers["authorization"].removeprefix("Bearer ")
        body = json.loads(request.body or b"{}")
        if current[0] is not None:
            current[0].attempts += 1
        status, headers, answer = keys.answer(key, body["model"], body, now_ms[0] / 1000, 0.0)
        return model.UpstreamResponse(status, headers, answer)

    def request(model_name: str, **extra: object) -> Any:
        document = {"model": model_name, "messages": [{"role": "user", "content": "ping"}]}
        return model.ClientRequest(
            "POST",
            "/v1/chat/completions",
            {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
            json.dumps({**document, **extra}).encode(),
        )

    bodies = [request(client.model) for client in clients]
    end = warmup_s + measure_s
    # Each client's next arrival; the large request (too-large) once, into the measured window.
    arrivals = [rng.expovariate(pool_models.offered_rate(name, c)) for c in clients]
    large_at = warmup_s + pool_models.LARGE_AT_S if name == "too-large" else math.inf
    large_status = None
    while True:
        index = min(range(len(clients)), key=arrivals.__getitem__)
        t = min(arrivals[index], large_at)
        if t >= end:
            break
        now_ms[0] = t * 1000
        if t == large_at:
            large_at = math.inf
            current[0] = None
            answer = rng.choice(pool).handle(
                request(pool_models.MAIN, max_tokens=pool_models.LARGE_TOKENS), send
            )
            large_status = answer.status
            continue
        arrivals[index] += rng.expovariate(pool_models.offered_rate(name, clients[index]))
        measuring = t >= warmup_s
        current[0] = figures[index] if measuring else None
        response = rng.choice(pool).handle(bodies[index], send)
        if not measuring:
            continue
        figures[index].requests += 1
        figures[index].statuses[str(response.status)] += 1
        if response.status == 429:
            code = json.loads(response.body or b"{}").get("error", {}).get("code")
            figures[index].codes[str(code)] += 1
    rows = []
    for client, counted in zip(clients, figures, strict=True):
        row = counted.summary(name, client, measure_s)
        if name == "too-large":
            row["large_attempts"] = keys.large_attempts
            row["large_status"] = large_status
        rows.append(row)
    return rows


def _main_models(args: argparse.Namespace) -> int:
    """`--models`: every scenario of `bench.pool_models` at each isolate count."""
    rows: list[dict[str, object]] = []
    for name in pool_models.SCENARIOS:
        for isolates in args.isolates:
            for row in run_models(name, isolates, args.warmup, args.measure, 16):
                rows.append({"target": "model", "scenario": name, "isolates": isolates, **row})
    pool_models.print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the projection; print a table; write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.pool_sim", description=__doc__)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument(
        "--isolates",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=(1, 3, 10, 100, 1000),
    )
    parser.add_argument(
        "--loads", type=lambda text: tuple(float(n) for n in text.split(",")), default=(0.8, 1.5)
    )
    parser.add_argument("--measure", type=float, default=60.0, help="virtual seconds measured")
    parser.add_argument("--warmup", type=float, default=120.0, help="virtual seconds before")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--against", metavar="REV", help="run the model as it was at this git revision instead"
    )
    parser.add_argument(
        "--models",
        action="store_true",
        help="run the scenarios of several models on one pool (bench/pool_models.py) instead",
    )
    args = parser.parse_args(argv)
    if args.against:
        given = list(sys.argv[1:] if argv is None else argv)
        at = given.index("--against")
        return _against(args.against, given[:at] + given[at + 2 :])
    if args.models:
        return _main_models(args)
    results = []
    print(
        f"{'isolates':>8} {'load':>5} {'answered':>9} {'goodput':>8} {'attempts':>9} "
        f"{'up 429':>7} {'cl 429':>7} {'w/ RA':>6} {'RA late':>8}  seconds"
    )
    for offered in args.loads:
        for isolates in args.isolates:
            scenario = Scenario(
                mixed_tiers(args.keys),
                isolates,
                offered,
                warmup_s=args.warmup,
                measure_s=args.measure,
            )
            started = time.perf_counter()
            figures = run(scenario)
            took = time.perf_counter() - started
            results.append({"keys": args.keys, "isolates": isolates, "load": offered, **figures})
            print(
                f"{isolates:>8} {offered:>5.0%} {figures['answered_share']:>9.1%} "
                f"{figures['goodput_over_capacity']:>8.2f} "
                f"{figures['attempts_per_request']:>9.3f} "
                f"{figures['upstream_429_per_request']:>7.3f} {figures['client_429']:>7} "
                f"{figures['client_429_with_retry_after']:>6} "
                f"{figures['client_429_retry_after_late']:>8}  {took:.1f}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _against(revision: str, rest: list[str]) -> int:
    """Run this script again with `infra` taken from `revision`'s exported tree."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", revision], capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="aigw-pool-sim-") as directory:
        subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
        print(f"the model at {revision}:", flush=True)
        return subprocess.run(
            [sys.executable, "-m", "bench.pool_sim", *rest],
            cwd=REPO_ROOT,
            env={**os.environ, MODEL_ROOT: directory},
            check=False,
        ).returncode


if __name__ == "__main__":
    sys.exit(main())
