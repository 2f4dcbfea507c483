"""Five promises of the key pool, as steps on its functions with a clock of their own: the same
table runs on the model's functions (tests/unit/test_key_limits.py) and on the rendered Worker's
(tests/worker/test_key_limits_workerd.py), each promise for a key and for one model beside another.

Steps act on key `key` (index) for requests naming `model` (None: the key's own state). `send`
counts a request (its mark is kept under `as`); `observe` reads `headers` (OpenAI's style unless
`style` says) as the answer to the request marked `mark`, and `expect` is whether it was read;
`contended` is a 429 from a key whose count was known; `rest` rests the state; `stated_until`,
`choose` and `exhausted` check what the pool decides at `now` (ms after `NOW`, `expect` too, or
None). Conformance cases cannot show these: they need answers out of order and time stood still.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = 1_800_000_000_000
"""The clock's origin (ms since the epoch); every `now` and `expect` time is relative to it."""


def _openai(limit: int, remaining: int, reset: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset,
    }


def _anthropic(kind: str, limit: int, remaining: int, reset_ms: int) -> dict[str, str]:
    reset = datetime.fromtimestamp((NOW + reset_ms) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        f"anthropic-ratelimit-{kind}-limit": str(limit),
        f"anthropic-ratelimit-{kind}-remaining": str(remaining),
        f"anthropic-ratelimit-{kind}-reset": reset,
    }


def _per_model(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same steps for model `m-a`, with model `m-b` on the same key left as it was: the
    promise holds for one model and says nothing of another."""
    return [{**step, "model": "m-a"} for step in steps] + [
        {"op": "stated_until", "key": 0, "model": "m-b", "now": 0, "expect": 0},
        {"op": "exhausted", "model": "m-b", "now": 0, "expect": None},
    ]


_SENT_SINCE = [
    {"op": "send", "key": 0, "as": "first"},
    {
        "op": "observe",
        "key": 0,
        "mark": "first",
        "headers": _openai(10, 1, "9s"),
        "now": 0,
        "expect": True,
    },
    {"op": "stated_until", "key": 0, "now": 0, "expect": 0},
    {"op": "send", "key": 0, "as": "second"},
    {"op": "stated_until", "key": 0, "now": 0, "expect": 1_000},
]
_OLDER_ANSWER = [
    {"op": "send", "key": 0, "as": "older"},
    {"op": "send", "key": 0, "as": "newer"},
    {
        "op": "observe",
        "key": 0,
        "mark": "newer",
        "headers": _openai(10, 5, "5s"),
        "now": 0,
        "expect": True,
    },
    {
        "op": "observe",
        "key": 0,
        "mark": "older",
        "headers": _openai(10, 0, "10s"),
        "now": 0,
        "expect": False,
    },
    {"op": "stated_until", "key": 0, "now": 0, "expect": 0},
]
_CONTENDED = [
    {"op": "send", "key": 0, "as": "first"},
    {
        "op": "observe",
        "key": 0,
        "mark": "first",
        "headers": _openai(8, 0, "1s"),
        "now": 0,
        "expect": True,
    },
    {"op": "stated_until", "key": 0, "now": 0, "expect": 125},
    {"op": "contended", "key": 0},
    {"op": "stated_until", "key": 0, "now": 0, "expect": 250},
    {"op": "exhausted", "now": 0, "expect": 125},
]
_GUESS_BESIDE_STATED = [
    {"op": "rest", "key": 0, "until": 10_000, "stated": False},
    {"op": "rest", "key": 1, "until": 5_000, "stated": True},
    {"op": "choose", "now": 0, "expect": 0},
    {"op": "exhausted", "now": 0, "expect": None},
]
_LEAST_LEFT = [
    {"op": "send", "key": 0, "as": "first"},
    {
        "op": "observe",
        "key": 0,
        "mark": "first",
        "style": "anthropic",
        "headers": {
            **_anthropic("tokens", 100_000, 90_000, 60_000),
            **_anthropic("input-tokens", 40_000, 40_000, 60_000),
            **_anthropic("output-tokens", 1, 0, 60_000),
        },
        "now": 0,
        "expect": True,
    },
    {"op": "stated_until", "key": 0, "now": 0, "expect": 60_000},
    {"op": "exhausted", "now": 0, "expect": 60_000},
]

PROMISES: list[dict[str, Any]] = []
for name, keys, steps in (
    ("requests sent since the last count was read count as spent", 1, _SENT_SINCE),
    ("an answer to an older request never overwrites a newer count", 1, _OLDER_ANSWER),
    ("a 429 from a key whose count was known halves the isolate's share", 1, _CONTENDED),
    ("a key resting on a guess beside stated rests is tried, not refused", 2, _GUESS_BESIDE_STATED),
    ("of several token limits, the one with the least left counts", 1, _LEAST_LEFT),
):
    PROMISES.append({"name": name, "keys": keys, "steps": steps})
    PROMISES.append({"name": f"{name}, per model", "keys": keys, "steps": _per_model(steps)})


def expected_results(promise: dict[str, Any]) -> list[object]:
    """What each step of a promise must give (None where the step only acts)."""
    return [step.get("expect") for step in promise["steps"]]
