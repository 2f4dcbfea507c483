"""The scenarios of a gateway shared by several models, for `bench.pool_sim --models` (the model
in virtual time) and `bench.pool --models` (the Worker in workerd, in real time).

Every provider of aigw whose limits are per model keeps a separate limit per key and model: here
three OpenAI keys each hold a token bucket per model (`bench/pool_keys.py`). Each scenario is a
set of open-loop clients, one model each, at a share of that model's capacity:

- `mixed`: a main model of 10 requests/s per key, its client at 60% of its capacity, beside a
  small model of 1 request/s per key whose client sends 3x its capacity.
- `refusal`: one key's project may not use the main model (OpenAI's `403 model_not_found`): the
  main model's client at 60% of the capacity of the two keys that may, the small model's at 80%
  of all three keys' (the refused key still serves it).
- `too-large`: the main model's client at 60%, and one request declaring 64,000 output tokens to
  keys of 8,000 a minute, which each key refuses with a 429 while its counts are whole (as
  Anthropic and OpenAI answer it).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from bench.pool_keys import OPENAI, BucketKey, Tier

MAIN = "gpt-main"
SMALL = "gpt-small"
MODEL_TIERS = {MAIN: Tier(600, 60.0), SMALL: Tier(60, 60.0)}
"""Each key's bucket per model, as OpenAI states them per minute: 600 and 60 requests a minute
(10 and 1 per second), refilled continuously."""
KEYS = 3
REFUSING_KEY = 0
"""The key whose project may not use the main model in the `refusal` scenario."""
OUTPUT_TOKENS = 8_000
"""Each key's output tokens a minute, for the `too-large` scenario's 429."""
LARGE_TOKENS = 64_000
LARGE_AT_S = 5.0
"""When, into the measured window, the `too-large` scenario's large request is sent."""


@dataclass(frozen=True)
class Client:
    """One open-loop client: its model, and its load as a share of that model's capacity."""

    model: str
    load: float


SCENARIOS: dict[str, tuple[Client, ...]] = {
    "mixed": (Client(MAIN, 0.6), Client(SMALL, 3.0)),
    "refusal": (Client(MAIN, 0.6), Client(SMALL, 0.8)),
    "too-large": (Client(MAIN, 0.6),),
}
GOALS = {
    "mixed": f"{MAIN}: answered >= 99.5%, no pool_exhausted; {SMALL}: goodput >= 0.90, attempts "
    "<= 1.10 per request",
    "refusal": f"{MAIN} (one key may not use it) and {SMALL}: answered >= 99.5%",
    "too-large": f"{MAIN}: answered >= 99.5%, no pool_exhausted; the large request sent upstream "
    "at most once",
}


def capacity(scenario: str, model: str) -> float:
    """Requests per second the keys take of `model` in `scenario`."""
    keys = KEYS - 1 if scenario == "refusal" and model == MAIN else KEYS
    return keys * MODEL_TIERS[model].per_second


def offered_rate(scenario: str, client: Client) -> float:
    """Requests per second `client` offers in `scenario`."""
    return client.load * capacity(scenario, client.model)


@dataclass
class Keys:
    """The keys' buckets per model, as the stand-in gateway and the simulation answer with them."""

    scenario: str
    names: tuple[str, ...]
    buckets: dict[tuple[str, str], BucketKey] = field(default_factory=dict)
    large_attempts: int = 0

    def answer(
        self, key: str, model: str, body: dict[str, object], now_s: float, wall_s: float
    ) -> tuple[int, dict[str, str], bytes]:
        """The provider's answer to a request naming `model` with `key` at `now_s`."""
        index = self.names.index(key)
        if self.scenario == "refusal" and model == MAIN and index == REFUSING_KEY:
            return 403, {"content-type": "application/json"}, _MODEL_REFUSED
        bucket = self.buckets.get((key, model))
        if bucket is None:
            bucket = self.buckets[(key, model)] = BucketKey(key, MODEL_TIERS[model], at_s=now_s)
        declared = body.get("max_tokens")
        if isinstance(declared, int) and declared > OUTPUT_TOKENS:
            self.large_attempts += 1
            headers = {
                **bucket.headers(OPENAI, now_s, wall_s),
                "x-ratelimit-limit-tokens": str(OUTPUT_TOKENS),
                "x-ratelimit-remaining-tokens": str(OUTPUT_TOKENS),
                "x-ratelimit-reset-tokens": "0s",
                "retry-after": "59",
                "content-type": "application/json",
            }
            return 429, headers, _TOO_LARGE
        if not bucket.take(now_s):
            headers, refusal = bucket.refusal(OPENAI, now_s, wall_s)
            return 429, headers, refusal
        return 200, bucket.headers(OPENAI, now_s, wall_s), _COMPLETION


_MODEL_REFUSED = json.dumps(
    {
        "error": {
            "message": f"Project `proj_bench` does not have access to model `{MAIN}`",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
).encode()
_TOO_LARGE = json.dumps(
    {
        "error": {
            "message": "This request would exceed the rate limit for your organization of "
            f"{OUTPUT_TOKENS:,} output tokens per minute. Please reduce the prompt length or the "
            "maximum tokens requested, or try again later.",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
).encode()
_COMPLETION = b'{"object":"chat.completion","choices":[]}'


@dataclass
class ClientFigures:
    """What one client's requests got over the measured window."""

    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    attempts: int = 0

    def summary(self, scenario: str, client: Client, measure_s: float) -> dict[str, object]:
        """The figures as printed and stored."""
        requests = max(self.requests, 1)
        answered = self.statuses.get("200", 0)
        return {
            "model": client.model,
            "load": client.load,
            "requests": self.requests,
            "answered_share": answered / requests,
            "goodput_over_capacity": answered / measure_s / capacity(scenario, client.model),
            "attempts_per_request": self.attempts / requests,
            "pool_exhausted": self.codes.get("pool_exhausted", 0),
            "statuses": dict(self.statuses),
        }


def print_table(rows: list[dict[str, object]]) -> None:
    """One line per client of each scenario and target."""
    columns = (
        "target",
        "scenario",
        "isolates",
        "model",
        "load",
        "answered",
        "goodput",
        "attempts/req",
        "pool_exhausted",
        "large sent",
    )
    lines = [columns]
    for row in rows:
        lines.append(
            (
                str(row["target"]),
                str(row["scenario"]),
                str(row["isolates"]),
                str(row["model"]),
                f"{row['load']:.0%}",
                f"{row['answered_share']:.1%}",
                f"{row['goodput_over_capacity']:.2f}",
                f"{row['attempts_per_request']:.3f}",
                str(row["pool_exhausted"]),
                "" if row.get("large_attempts") is None else str(row["large_attempts"]),
            )
        )
    widths = [max(len(line[n]) for line in lines) for n in range(len(columns))]
    for line in lines:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
    for scenario, goal in GOALS.items():
        print(f"goal, {scenario}: {goal}")
