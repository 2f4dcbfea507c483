"""Rate-limited provider keys for the pool benchmark: token buckets that answer as the providers do.

Each key is a token bucket, the model OpenAI and Anthropic document for their limits: it holds at
most `limit` requests and refills at `limit` per `window_s`, continuously. A request takes one
token if there is one (an answer with status 200) or is refused (429). Every answer carries the
provider's rate-limit headers with the provider's meaning: OpenAI's `x-ratelimit-remaining-requests`
and `x-ratelimit-reset-requests` (a Go duration until the bucket is whole again), or Anthropic's
`anthropic-ratelimit-requests-remaining` and `-reset` (an RFC 3339 time); a 429 adds `retry-after`
(whole seconds, rounded up), `retry-after-ms` and the provider's error body. The benchmark's
stand-in gateway (`bench/pool_upstream.py`) and its simulation (`bench/pool_sim.py`) both use
these, so the live run and the projection meet the same keys.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

OPENAI = "openai"
ANTHROPIC = "anthropic"


@dataclass(frozen=True)
class Tier:
    """A kind of key: how many requests its bucket holds, refilled over `window_s` seconds."""

    limit: int
    window_s: float

    @property
    def per_second(self) -> float:
        """Requests per second the key takes in the long run."""
        return self.limit / self.window_s


@dataclass
class BucketKey:
    """One key's bucket; `level` is what is left, in requests, at `at_s`."""

    name: str
    tier: Tier
    level: float = field(default=-1.0)
    at_s: float = 0.0
    taken: int = 0
    refused: int = 0

    def __post_init__(self) -> None:
        if self.level < 0:
            self.level = float(self.tier.limit)

    def _refill(self, now_s: float) -> None:
        if now_s > self.at_s:
            refilled = (now_s - self.at_s) * self.tier.per_second
            self.level = min(self.tier.limit, self.level + refilled)
            self.at_s = now_s

    def take(self, now_s: float) -> bool:
        """Take a token for a request at `now_s`, if there is one."""
        self._refill(now_s)
        if self.level >= 1:
            self.level -= 1
            self.taken += 1
            return True
        self.refused += 1
        return False

    def next_token_s(self, now_s: float) -> float:
        """Seconds from `now_s` until the bucket holds a token (0 when it holds one now)."""
        self._refill(now_s)
        return max(0.0, (1 - self.level) / self.tier.per_second)

    def until_whole_s(self) -> float:
        """Seconds until the bucket is full again (as of its last refill)."""
        return (self.tier.limit - self.level) / self.tier.per_second

    def headers(self, style: str, now_s: float, wall_s: float) -> dict[str, str]:
        """The provider's rate-limit headers for the bucket as it is now (`wall_s`: the Unix time
        that `now_s` stands for, for Anthropic's absolute reset)."""
        self._refill(now_s)
        remaining = str(int(self.level))
        whole = self.until_whole_s()
        if style == ANTHROPIC:
            return {
                "anthropic-ratelimit-requests-limit": str(self.tier.limit),
                "anthropic-ratelimit-requests-remaining": remaining,
                "anthropic-ratelimit-requests-reset": rfc3339(wall_s + whole),
            }
        return {
            "x-ratelimit-limit-requests": str(self.tier.limit),
            "x-ratelimit-remaining-requests": remaining,
            "x-ratelimit-reset-requests": go_duration(whole),
        }

    def refusal(self, style: str, now_s: float, wall_s: float) -> tuple[dict[str, str], bytes]:
        """The headers and body of the provider's 429 for this key now."""
        wait = self.next_token_s(now_s)
        headers = self.headers(style, now_s, wall_s)
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        headers["content-type"] = "application/json"
        if style == ANTHROPIC:
            body = {
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "Number of requests has exceeded your rate limit",
                },
            }
        else:
            body = {
                "error": {
                    "message": f"Rate limit reached for requests on key {self.name[-1:]}: "
                    f"Limit {self.tier.limit}, Used {self.tier.limit}, Requested 1. "
                    f"Please try again in {go_duration(wait)}.",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            }
        return headers, json.dumps(body).encode()


def go_duration(seconds: float) -> str:
    """`seconds` as Go's `time.Duration.String` writes it, as OpenAI's reset headers do."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{_trim(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_trim(secs)}s"
    if hours or minutes:
        text = f"{int(minutes)}m" + text
    if hours:
        text = f"{int(hours)}h" + text
    return text


def _trim(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def rfc3339(unix_s: float) -> str:
    """A Unix time as an RFC 3339 UTC time with milliseconds, as Anthropic's reset headers are."""
    moment = datetime.fromtimestamp(unix_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
