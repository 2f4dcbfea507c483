"""What `aigw usage`, `keys` and `clients` cost as traffic grows: API calls and seconds per report.

`python -m bench.reports [--requests 1000000] [--logs 10000]` fills the loopback Cloudflare API
(tests/cloudflare_fake.py: the Analytics Engine SQL API run in chDB, the GraphQL stand-in) with a
month of synthetic recorded requests, sampled as Analytics Engine samples them (busy keys' points
stand for 20 to 100 requests each, quiet ones for 1), and times each report reading the Worker's
events, then the same reports with `--source logs` over `--logs` gateway logs, and extrapolates
the logs path linearly to 100k and 1M (50 logs a call; it says so). Last, without sampling, it
checks that `usage` counts exactly the requests recorded. Every API call is counted by the stand-in.
Everything binds to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from infra.cli import api
from infra.cli.main import main
from tests.cloudflare_fake import ACCOUNT_ID, API_TOKEN, GATEWAY_ID, FakeCloudflare, serving

DATASET = "aigw_bench"
REPORTS = {
    "usage --by client": ["usage", "--by", "client"],
    "usage --by model": ["usage", "--by", "model"],
    "keys": ["keys"],
    "clients": ["clients"],
}
"""The reports timed (`keys --chart` adds one query; drawing the chart is matplotlib's time)."""
END = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
WINDOW = ["--since", "31d"]
TARGET = ["--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID, "--dataset", DATASET]
PAGE = 50
SECONDS = 30 * 86400


def synthetic_points(requests: int, sampled: bool) -> str:
    """A SELECT of the dataset's columns: `requests` recorded requests over 30 days, 8 keys of
    two providers, 12 clients, 6 models, a mix of outcomes and failed-over attempts."""
    # Sampling as Cloudflare describes it: equitable per index, so the busiest keys' rows stand
    # for the most requests. Unsampled, every row is one request.
    interval = "multiIf(number % 8 < 3, 100, number % 8 < 6, 20, 1)" if sampled else "1"
    # Rows needed so that the intervals add up to `requests`: 3/8 x 100 + 3/8 x 20 + 2/8 x 1.
    per_row = (3 * 100 + 3 * 20 + 2 * 1) / 8 if sampled else 1
    rows = int(requests / per_row)
    start = int(END.timestamp()) - SECONDS
    return f"""
        SELECT 'aigw_bench', toDateTime({start} + intDiv(number * {SECONDS}, {rows})),
          {interval}, concat(if(number % 8 < 5, 'openai', 'anthropic'), '/k', toString(number % 8)),
          'aigw.v1', if(number % 17 = 0, 'attempt', 'request'),
          concat('client-', toString(number % 12)), if(number % 8 < 5, 'openai', 'anthropic'),
          concat('model-', toString(number % 6)), concat('k', toString(number % 8)),
          multiIf(number % 17 = 0, 'provider_rate_limited', number % 101 = 0, 'model_not_allowed',
                  number % 211 = 0, 'unauthenticated', 'answered'),
          '/openai/chat/completions', '', '', '', '', '', '', '', '', '', '', '', '',
          multiIf(number % 17 = 0, 429, number % 101 = 0, 403, number % 211 = 0, 401, 200),
          1 + (number % 17 = 0), 120 + number % 300, number % 9 = 0,
          multiIf(number % 17 = 0, 429, number % 101 = 0, -1, number % 211 = 0, -1, 200),
          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        FROM numbers({rows})
    """


def run_report(fake: FakeCloudflare, argv: list[str], source: str) -> tuple[int, float]:
    """(API calls, seconds) of one report, its JSON printed to nowhere."""
    with fake.lock:
        before = len(fake.calls)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = main([*argv, "--json", *TARGET, *WINDOW, "--source", source])
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"aigw {' '.join(argv)} failed")
    with fake.lock:
        return len(fake.calls) - before, elapsed


@contextlib.contextmanager
def stand_in() -> Iterator[FakeCloudflare]:
    """The loopback Cloudflare API, selected as the CLI selects it."""
    fake = FakeCloudflare()
    fake.add_gateway()
    with serving(fake):
        os.environ["CLOUDFLARE_BASE_URL"] = fake.api_url
        os.environ["CLOUDFLARE_API_TOKEN"] = API_TOKEN
        api.API_RETRIES = 0
        yield fake


def main_bench(requests: int, logs: int) -> None:
    """Print the figures."""
    with stand_in() as fake:
        started = time.perf_counter()
        fake.analytics.generate(DATASET, synthetic_points(requests, sampled=True))
        print(
            f"{requests:,} recorded requests, sampled, filled in "
            f"{time.perf_counter() - started:.1f} s (chDB)"
        )
        print(f"{'report':<20} {'source':<8} {'requests':>10} {'API calls':>10} {'seconds':>8}")
        for name, argv in REPORTS.items():
            calls, seconds = run_report(fake, argv, "events")
            print(f"{name:<20} {'events':<8} {requests:>10,} {calls:>10} {seconds:>8.2f}")
        for index in range(logs):
            moment = END - timedelta(seconds=SECONDS * (index + 1) / (logs + 1))
            fake.add_log(moment, client=f"client-{index % 12}", key=f"k{index % 8}", cost=0.0001)
        for name, argv in REPORTS.items():
            calls, seconds = run_report(fake, argv, "logs")
            print(f"{name:<20} {'logs':<8} {logs:>10,} {calls:>10} {seconds:>8.2f}")
            for more in (100_000, 1_000_000):
                if more > logs:
                    scale = more / logs
                    print(
                        f"{name:<20} {'logs':<8} {more:>10,} {round(calls * scale):>10} "
                        f"{seconds * scale:>8.1f}  (extrapolated from {logs:,}: linear in calls)"
                    )
    with stand_in() as fake:
        fake.analytics.generate(DATASET, synthetic_points(requests, sampled=False))
        # The worst case for the events: every request a row of its own (no sampling at all).
        for name, argv in REPORTS.items():
            calls, seconds = run_report(fake, argv, "events")
            print(f"{name:<20} {'unsampled':<9}{requests:>10,} {calls:>10} {seconds:>8.2f}")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            main(["usage", "--json", *TARGET, *WINDOW])
        counted = json.loads(buffer.getvalue())["total"]["requests"]
        attempts = sum(1 for n in range(int(requests)) if n % 17 == 0)
        print(
            f"unsampled: usage counts {counted:,} requests; recorded {requests - attempts:,} "
            f"request points (and {attempts:,} attempt points): "
            f"{'equal' if counted == requests - attempts else 'DIFFERENT'}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=10_000)
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    main_bench(args.requests, args.logs)
