"""`python -m bench`: what each proxy adds to a request, against direct calls, side by side."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench import targets
from bench.load import Batch, Target, percentile, run_batch
from bench.upstream import KEYS, RETRY_AFTER_SECONDS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results"
FLAKY_KEYS = KEYS[:2]
FLAKY_RATE = 0.3
LIMITED_CONCURRENCY = 16
RECIPE = "baseline"
"""The target every aigw variant is compared with, figure by figure, in the ratio lines."""
RATIO_GOALS = {"added_latency": 1.10, "first_chunk": 1.10, "throughput": 1.0, "cpu": None}
"""Issue 11's goals: aigw's added latency at most 1.10x the recipe's, its throughput at least 1x."""


@dataclass(frozen=True)
class Profile:
    """How many requests of each kind, per concurrency; bounded so a run takes minutes."""

    concurrencies: tuple[int, ...] = (1, 16, 64)
    plain: dict[int, int] = field(default_factory=lambda: {1: 1000, 16: 1500, 64: 3000})
    streams: dict[int, int] = field(default_factory=lambda: {1: 20, 16: 64, 64: 192})
    chunks: int = 20
    interval_ms: float = 20.0
    limited: int = 600
    rounds: int = 3
    """Each batch is split in this many rounds, the targets taking turns between them."""
    single_rounds: int = 50
    """The rounds at concurrency 1, where the latency goal is judged and requests are cheap: in
    rounds of 100 a burst of other work on the machine could land on one target's round and
    move its p50 by a quarter of the recipe's added latency; in rounds of 20 it hits all alike."""

    def rounds_at(self, concurrency: int, count: int) -> int:
        """How many rounds `count` requests at `concurrency` are split in (never empty ones)."""
        return min(count, self.single_rounds if concurrency == 1 else self.rounds)


QUICK = Profile(
    plain={1: 50, 16: 200, 64: 400},
    streams={1: 5, 16: 16, 64: 64},
    chunks=10,
    interval_ms=10.0,
    limited=200,
    rounds=2,
    single_rounds=5,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the tables, write the JSON (and the plot); return 0."""
    args = _parser().parse_args(argv)
    profile = _profile(args)
    # Wide enough for the tables when the output goes to a file or a narrow CI log.
    console = Console(width=max(Console().width, 120))
    output: Path = args.output_dir
    output.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(args.litellm),
        "profile": {
            "concurrencies": profile.concurrencies,
            "plain_requests": profile.plain,
            "streams": profile.streams,
            "chunks_per_stream": profile.chunks,
            "chunk_interval_ms": profile.interval_ms,
            "rounds": profile.rounds,
            "rounds_at_concurrency_1": profile.single_rounds,
            "rate_limited": {
                "requests": profile.limited,
                "concurrency": _limited_concurrency(profile),
                "flaky_keys": f"{len(FLAKY_KEYS)} of {len(KEYS)}",
                "rate_of_429": FLAKY_RATE,
            },
        },
    }
    measured: dict[str, dict[str, object]] = {}
    with running_upstream() as upstream_url, contextlib.ExitStack() as running:
        started: list[Target] = []
        for name in targets.TARGET_NAMES:
            if name not in args.targets:
                measured[name] = {"skipped": "not selected with --targets"}
                continue
            console.print(f"starting [bold]{name}[/]…")
            try:
                started.append(running.enter_context(_start(name, upstream_url, args.litellm)))
            except targets.Unavailable as why:
                console.print(f"[yellow]{name} skipped[/]: {why}")
                measured[name] = {"skipped": str(why)}
        measured |= asyncio.run(_measure(started, upstream_url, profile, console))
    measured = {name: measured[name] for name in targets.TARGET_NAMES}
    _add_differences(measured)
    results["targets"] = measured
    results["ratios_to_recipe"] = recipe_ratios(measured)
    path = output / "latest.json"
    path.write_text(json.dumps(_finite(results), indent=2) + "\n")
    _print_tables(console, measured, profile)
    _print_ratios(console, results["ratios_to_recipe"])
    console.print(f"JSON: {path}")
    if not args.no_plot:
        plot_path = output / "latency.png"
        if plot(measured, profile, plot_path):
            console.print(f"plot: {plot_path}")
        else:
            console.print(
                "[yellow]no plot[/]: matplotlib is missing (pip install -r requirements-bench.txt)"
            )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests: about a minute")
    parser.add_argument(
        "--targets",
        type=lambda text: tuple(text.split(",")),
        default=targets.TARGET_NAMES,
        help=f"comma-separated subset of {','.join(targets.TARGET_NAMES)} (default: all)",
    )
    parser.add_argument(
        "--concurrency",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        help="comma-separated concurrencies (default 1,16,64)",
    )
    parser.add_argument(
        "--requests", type=int, help="use this many requests for every batch (smoke runs)"
    )
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--litellm",
        type=Path,
        default=targets.LITELLM_VENV / "bin" / "litellm",
        help="the `litellm` executable (default: bench/.venv-litellm/bin/litellm)",
    )
    return parser


def _profile(args: argparse.Namespace) -> Profile:
    base = QUICK if args.quick else Profile()
    concurrencies = args.concurrency or base.concurrencies
    if any(c < 1 for c in concurrencies):
        raise SystemExit("--concurrency: every value must be at least 1")

    def count(table: dict[int, int], c: int) -> int:
        if args.requests:
            return int(args.requests)
        return table.get(c, table[max(table)])

    return Profile(
        concurrencies=tuple(concurrencies),
        plain={c: count(base.plain, c) for c in concurrencies},
        streams={c: count(base.streams, c) for c in concurrencies},
        chunks=base.chunks,
        interval_ms=base.interval_ms,
        limited=int(args.requests) if args.requests else base.limited,
        rounds=1 if args.requests else base.rounds,
        single_rounds=1 if args.requests else base.single_rounds,
    )


def _limited_concurrency(profile: Profile) -> int:
    return min(LIMITED_CONCURRENCY, max(profile.concurrencies))


@contextlib.contextmanager
def running_upstream(module: str = "bench.upstream") -> Iterator[str]:
    """The fake gateway (`module`, run with `-m`) in its own process, so it does not share the
    client's event loop."""
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the fake gateway did not start (it printed {url!r})")
        yield url
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start(name: str, upstream_url: str, litellm: Path) -> AbstractContextManager[Target]:
    if name in targets.WORKER_TARGET_NAMES:
        return targets.start_worker(name, upstream_url)
    starters: dict[str, Callable[[], AbstractContextManager[Target]]] = {
        "direct": lambda: targets.direct(upstream_url),
        "litellm": lambda: targets.litellm(upstream_url, litellm),
    }
    return starters[name]()


async def _configure(upstream_url: str, profile: Profile, *, flaky: bool) -> dict[str, object]:
    """Set the fake gateway's stream shape and 429s; return what it counted since the last call."""
    async with httpx.AsyncClient(timeout=10.0) as admin:
        stats = (await admin.get(f"{upstream_url}/_bench/stats")).json()
        config = {
            "chunks": profile.chunks,
            "interval_ms": profile.interval_ms,
            "flaky_keys": list(FLAKY_KEYS) if flaky else [],
            "flaky_rate": FLAKY_RATE if flaky else 0.0,
        }
        (await admin.put(f"{upstream_url}/_bench/config", json=config)).raise_for_status()
    return dict(stats)


async def _measure(
    started: list[Target], upstream_url: str, profile: Profile, console: Console
) -> dict[str, dict[str, object]]:
    """Every figure for every target, the targets taking turns so that noise hits all alike."""
    await _configure(upstream_url, profile, flaky=False)
    figures: dict[str, dict[str, object]] = {t.name: {"plain": {}, "stream": {}} for t in started}
    for kind, counts in (("plain", profile.plain), ("stream", profile.streams)):
        for c in profile.concurrencies:
            console.print(f"{kind} requests at concurrency {c}…")
            batches: dict[str, list[Batch]] = {target.name: [] for target in started}
            rounds = profile.rounds_at(c, counts[c])
            per_round = math.ceil(counts[c] / rounds)
            for turn in range(rounds):
                # The order rotates each round, so no target always runs right after the same one
                # (a one-off cost of whatever ran before cannot stick to one target).
                for target in started[turn % len(started) :] + started[: turn % len(started)]:
                    batch = await run_batch(
                        target, count=per_round, concurrency=c, stream=kind == "stream"
                    )
                    batches[target.name].append(batch)
            summarize = _plain_figures if kind == "plain" else _stream_figures
            for name, parts in batches.items():
                table = figures[name][kind]
                assert isinstance(table, dict)
                table[str(c)] = summarize(_merge(parts))
    # 429s last: a proxy's key cool-downs would otherwise carry over into the other figures.
    console.print("requests with rate-limited keys…")
    for target in started:
        batch = await run_batch(
            target,
            count=profile.limited,
            concurrency=_limited_concurrency(profile),
            stream=False,
            when_warm=lambda: _configure(upstream_url, profile, flaky=True),
        )
        counted = await _configure(upstream_url, profile, flaky=False)
        figures[target.name]["rate_limited"] = _limited_figures(batch, counted)
    return figures


def _merge(batches: list[Batch]) -> Batch:
    """One batch from a target's rounds: all samples, the summed wall and CPU time."""
    cpu = [batch.cpu_seconds for batch in batches]
    return Batch(
        samples=[sample for batch in batches for sample in batch.samples],
        wall_seconds=sum(batch.wall_seconds for batch in batches),
        cpu_seconds=None if None in cpu else sum(c for c in cpu if c is not None),
    )


def _ms(seconds: float) -> float:
    return seconds * 1000


def _plain_figures(batch: Batch) -> dict[str, float | int | None]:
    ok = [s.seconds for s in batch.samples if s.status == 200]
    return {
        "requests": len(batch.samples),
        "errors": len(batch.samples) - len(ok),
        "p50_ms": _ms(percentile(ok, 0.50)),
        "p99_ms": _ms(percentile(ok, 0.99)),
        "rps": len(batch.samples) / batch.wall_seconds,
        "cpu_ms_per_request": (
            None if batch.cpu_seconds is None else _ms(batch.cpu_seconds) / len(batch.samples)
        ),
    }


def _stream_figures(batch: Batch) -> dict[str, float | int | None]:
    ok = [s for s in batch.samples if s.status == 200 and s.first_chunk is not None]
    deviations = [d for s in ok for d in s.gap_deviations]
    return {
        "streams": len(batch.samples),
        "errors": len(batch.samples) - len(ok),
        "ttfc_p50_ms": _ms(percentile([s.first_chunk for s in ok if s.first_chunk], 0.50)),
        "ttfc_p99_ms": _ms(percentile([s.first_chunk for s in ok if s.first_chunk], 0.99)),
        "pacing_dev_mean_ms": _ms(sum(deviations) / len(deviations)) if deviations else math.nan,
        "pacing_dev_p99_ms": _ms(percentile(deviations, 0.99)),
        # Which stream was slowest to its first chunk, counted from 0 in sending order (at
        # concurrency 1): tells a one-off (the first stream) from a tail spread over the run.
        "ttfc_first_stream_ms": _ms(first[0]) if (first := _first_chunks(batch)) else math.nan,
        "ttfc_slowest_stream": first.index(max(first)) if first else None,
    }


def _first_chunks(batch: Batch) -> list[float]:
    return [s.first_chunk for s in batch.samples if s.first_chunk is not None]


def _limited_figures(batch: Batch, counted: dict[str, object]) -> dict[str, object]:
    statuses: dict[str, int] = {}
    for sample in batch.samples:
        statuses[str(sample.status)] = statuses.get(str(sample.status), 0) + 1
    upstream = counted.get("statuses", {})
    attempts = sum(upstream.values()) if isinstance(upstream, dict) else 0
    return {
        "requests": len(batch.samples),
        "succeeded_share": statuses.get("200", 0) / len(batch.samples),
        "client_statuses": statuses,
        "upstream_statuses": upstream,
        "upstream_attempts_per_request": attempts / len(batch.samples),
        "p50_ms": _ms(percentile([s.seconds for s in batch.samples if s.status == 200], 0.50)),
    }


def _add_differences(measured: dict[str, dict[str, object]]) -> None:
    """Add each target's latency minus the direct calls' at the same concurrency."""
    floor = measured.get("direct", {})
    for figures in measured.values():
        if "skipped" in figures or "skipped" in floor:
            continue
        for kind, pairs in (
            ("plain", (("p50_ms", "added_p50_ms"), ("p99_ms", "added_p99_ms"))),
            (
                "stream",
                (("ttfc_p50_ms", "added_ttfc_p50_ms"), ("ttfc_p99_ms", "added_ttfc_p99_ms")),
            ),
        ):
            mine, direct = figures[kind], floor[kind]
            assert isinstance(mine, dict) and isinstance(direct, dict)
            for c, row in mine.items():
                for figure, added in pairs:
                    row[added] = row[figure] - direct[c][figure]


def recipe_ratios(measured: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Each aigw variant's figures over the recipe's, measured in the same run.

    `added_latency` and `first_chunk` divide what each adds to the p50 of direct calls at the
    lowest concurrency (higher ones measure queueing for the machine's CPUs more than the proxy);
    `throughput` divides req/s at the highest; `cpu` divides the proxy's CPU per request over
    every non-streaming request. `per_concurrency` has the same ratio at each concurrency.
    """
    recipe = measured.get(RECIPE, {})
    ratios: dict[str, dict[str, object]] = {}
    if "skipped" in recipe:
        return ratios
    for name in targets.AIGW_VARIANTS:
        mine = measured.get(name, {})
        if "skipped" in mine or not mine:
            continue
        figures: dict[str, object] = {}
        for figure, kind, key, pick in (
            ("added_latency", "plain", "added_p50_ms", min),
            ("first_chunk", "stream", "added_ttfc_p50_ms", min),
            ("throughput", "plain", "rps", max),
            ("cpu", "plain", "cpu_ms_per_request", None),
        ):
            rows, theirs = mine[kind], recipe[kind]
            assert isinstance(rows, dict) and isinstance(theirs, dict)
            each = {c: _ratio(rows[c].get(key), theirs[c].get(key)) for c in rows if c in theirs}
            if pick is None:
                value = _ratio(_total_cpu_ms(rows), _total_cpu_ms(theirs))
            else:
                value = each.get(str(pick(int(c) for c in each))) if each else None
            figures[figure] = {"ratio": value, "per_concurrency": each}
        ratios[name] = figures
    return ratios


def _ratio(mine: object, theirs: object) -> float | None:
    if not isinstance(mine, int | float) or not isinstance(theirs, int | float) or theirs <= 0:
        return None
    return float(mine) / float(theirs)


def _total_cpu_ms(rows: dict[str, dict[str, float]]) -> float | None:
    """The proxy's CPU per request over all the rows' requests together."""
    if any(row.get("cpu_ms_per_request") is None for row in rows.values()):
        return None
    spent = sum(row["cpu_ms_per_request"] * row["requests"] for row in rows.values())
    return spent / sum(row["requests"] for row in rows.values())


def _print_ratios(console: Console, ratios: object) -> None:
    """One line per figure and aigw variant: its ratio to the recipe, at a glance."""
    assert isinstance(ratios, dict)
    labels = {
        "added_latency": "added latency p50, lowest concurrency",
        "first_chunk": "added first streamed chunk p50, lowest concurrency",
        "throughput": "throughput req/s, highest concurrency",
        "cpu": "proxy CPU per request, all non-streaming requests",
    }
    for name, figures in ratios.items():
        for figure, label in labels.items():
            entry = figures[figure]
            goal = RATIO_GOALS[figure]
            verdict = ""
            if goal is not None and entry["ratio"] is not None:
                met = entry["ratio"] <= goal if figure != "throughput" else entry["ratio"] >= goal
                sign = "<=" if figure != "throughput" else ">="
                verdict = f"  goal {sign} {goal:.2f}x: " + ("met" if met else "[red]MISSED[/]")
            each = ", ".join(
                f"c={c} " + ("-" if value is None else f"{value:.2f}x")
                for c, value in entry["per_concurrency"].items()
            )
            # soft_wrap: one line each however narrow the terminal, so a regression is one grep.
            console.print(
                f"{name} / {RECIPE}: {label}: [bold]{_num(entry['ratio'])}x[/]{verdict} ({each})",
                soft_wrap=True,
            )


def _finite(value: object) -> object:
    """NaN (no sample) as JSON null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _num(value: object, digits: int = 2) -> str:
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


_LIMITED_COLUMNS = (
    "target",
    "client requests that succeed",
    "upstream 429s",
    "upstream attempts/request",
    "p50 of successes",
    "client statuses",
)
_PACING_KEYS = ("pacing_dev_mean_ms", "pacing_dev_p99_ms", "errors")
_PACING_COLUMNS = ("pacing mean", "pacing p99", "errors")


def _print_tables(
    console: Console, measured: dict[str, dict[str, object]], profile: Profile
) -> None:
    ran = {name: figures for name, figures in measured.items() if "skipped" not in figures}
    plain = _table(
        "Non-streaming chat completions, ms (+ = added over direct calls at that concurrency)",
        ("target", "conc", "p50", "p99", "+p50", "+p99", "req/s", "proxy CPU ms/req", "errors"),
    )
    stream = _table(
        f"Streams of {profile.chunks} chunks {profile.interval_ms:g} ms apart, ms "
        "(pacing: |gap received - gap sent| per chunk)",
        ("target", "conc", "1st chunk p50", "+p50", "1st chunk p99", *_PACING_COLUMNS),
    )
    limited = _table(
        f"429 (Retry-After {RETRY_AFTER_SECONDS} s) on {FLAKY_RATE:.0%} of requests to "
        f"{len(FLAKY_KEYS)} of {len(KEYS)} keys, concurrency {_limited_concurrency(profile)}",
        _LIMITED_COLUMNS,
    )
    for name, figures in ran.items():
        for c, row in _rows(figures, "plain"):
            plain.add_row(
                name,
                c,
                *(
                    _num(row.get(key))
                    for key in ("p50_ms", "p99_ms", "added_p50_ms", "added_p99_ms")
                ),
                _num(row["rps"], 0),
                _num(row["cpu_ms_per_request"]),
                _num(row["errors"]),
            )
        for c, row in _rows(figures, "stream"):
            keys = ("ttfc_p50_ms", "added_ttfc_p50_ms", "ttfc_p99_ms", *_PACING_KEYS)
            stream.add_row(name, c, *(_num(row.get(key)) for key in keys))
        share = figures["rate_limited"]
        assert isinstance(share, dict)
        limited.add_row(
            name,
            f"{share['succeeded_share']:.1%}",
            str(share["upstream_statuses"].get("429", 0)),
            _num(share["upstream_attempts_per_request"]),
            _num(share["p50_ms"]),
            ", ".join(f"{k}: {v}" for k, v in sorted(share["client_statuses"].items())),
        )
    console.print(plain, stream, limited)
    for name, figures in measured.items():
        if name not in ran:
            console.print(f"[yellow]{name}[/] not measured: {figures['skipped']}")


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("target", "client statuses") else "right"
        )
    return table


def _rows(figures: dict[str, object], kind: str) -> Iterator[tuple[str, dict[str, float]]]:
    table = figures[kind]
    assert isinstance(table, dict)
    yield from table.items()


def plot(measured: dict[str, dict[str, object]], profile: Profile, path: Path) -> bool:
    """Draw p50 and p99 latency and throughput against concurrency; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return False
    panels = (
        ("p50_ms", "p50 latency (ms)"),
        ("p99_ms", "p99 latency (ms)"),
        ("rps", "requests/s (client, proxy and gateway share 2 cores)"),
        ("cpu_ms_per_request", "proxy CPU time per request (ms)"),
    )
    figure, grid = plt.subplots(2, 2, figsize=(12, 8))
    axes = list(grid.flat)
    styles = {"direct": "k--", "aigw": "C0-o", "baseline": "C1-s", "litellm": "C2-^"}
    for axis, (key, label) in zip(axes, panels, strict=True):
        for name, figures in measured.items():
            if "skipped" in figures:
                continue
            rows = dict(_rows(figures, "plain"))
            xs = [c for c in profile.concurrencies if rows.get(str(c), {}).get(key) is not None]
            if xs:
                ys = [rows[str(c)][key] for c in xs]
                axis.plot(xs, ys, styles.get(name, "-"), label=name)
        axis.set_xscale("log", base=2)
        axis.set_xticks(list(profile.concurrencies), [str(c) for c in profile.concurrencies])
        if key != "rps":
            axis.set_yscale("log")
            axis.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        else:
            axis.set_ylim(bottom=0)
        axis.set_xlabel("concurrent clients")
        axis.set_title(label)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    figure.suptitle("Non-streaming chat completions through each proxy, loopback fake gateway")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def machine(litellm: Path | None = None) -> dict[str, object]:
    """What the numbers ran on."""
    cpu_model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    workerd = None
    with contextlib.suppress(Exception):
        from infra.cli.workerd import workerd_binary

        workerd = subprocess.run(
            [str(workerd_binary()), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        # Other work on the machine skews the figures; this says how busy it was at the start.
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "httpx": httpx.__version__,
        "workerd": workerd,
        "litellm": targets.litellm_version(litellm),
    }


if __name__ == "__main__":
    raise SystemExit(main())
