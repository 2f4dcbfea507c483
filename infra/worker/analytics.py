"""The Worker's events in Workers Analytics Engine: which data points it writes, and their fields.

The Worker writes one data point per client request and one per upstream attempt that failed over
to another key, so that a key's refusals are counted even when another key answered. This module
is the model of worker_template/analytics.js.j2 (tests/vectors/analytics/points.json runs on
both) and the one place that says which column holds what: the reports (infra/cli/events.py)
read the same names back through the SQL API.

What Cloudflare documents, and what follows from it (read 2026-12):
- `writeDataPoint({blobs, doubles, indexes})`: at most 20 blobs, 20 doubles and one index per
  call; an index of at most 96 bytes; blobs together at most 16 KB per data point; at most 250
  data points per Worker invocation. Beyond a limit the call throws a TypeError, so every blob is
  bounded here, and the Worker catches whatever it throws anyway.
  https://developers.cloudflare.com/analytics/analytics-engine/limits/ and workerd's
  src/workerd/api/analytics-engine-impl.h (MAX_INDEX_SIZE_IN_BYTES, MAX_ARRAY_MEMBERS).
- Writes do not block the request ("Writes are non-blocking - no need to await or use
  waitUntil()": https://developers.cloudflare.com/workers/examples/analytics-engine).
- Sampling is equitable per index value: an index that receives many points is sampled, others
  are kept whole, and every row carries `_sample_interval` (how many points it stands for), so a
  count is `SUM(_sample_interval)` and a sum `SUM(_sample_interval * doubleN)`. Counts grouped by
  the index are exact even when sampled.
  https://developers.cloudflare.com/analytics/analytics-engine/sampling/ and .../sql-api/
- A dataset's table has `dataset`, `timestamp`, `_sample_interval`, `index1`, `blob1`..`blob20`,
  `double1`..`double20` (https://developers.cloudflare.com/analytics/analytics-engine/sql-api/).
- Data is kept three months. Workers Free includes 100,000 data points written and 10,000 read
  queries a day; Workers Paid 10 million written (then $0.25 a million) and 1 million read queries
  (then $1.00 a million) a month
  (https://developers.cloudflare.com/analytics/analytics-engine/pricing/).

The index: the pool key (`<provider>/<key id>`). `aigw keys` is the report that must survive
sampling: it judges a key by its rare answers (one 401 among thousands of successes is what says
"replace"), and it groups by exactly the index, where Cloudflare keeps counts exact. Each key gets
its own sampling budget, so a key that is seldom used, or refused and resting, keeps every point
while a busy key is sampled; and a flood of unauthenticated requests (no key: index "") is sampled
on its own without thinning any key's points. Per-client and per-model totals are sums over all
index values, which sampling keeps accurate.

Never in a data point: a provider key (only its id, the first 8 hex of its SHA-256), a client
token, the gateway token, a request's or an answer's content, or its query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BINDING = "ANALYTICS"
"""The Worker's Analytics Engine binding (infra/resources/script.py binds it)."""
SCHEMA = "aigw.v1"
"""Written into every data point, so a later change of columns can be told apart."""

Kind = Literal["request", "attempt"]
REQUEST: Kind = "request"
"""The point of a client request: its final answer, its last key, how many attempts it took."""
ATTEMPT: Kind = "attempt"
"""The point of an upstream attempt that failed over to another key (the last attempt's answer
is the request's own point, so every upstream answer is counted exactly once)."""

BLOBS = ("schema", "kind", "client", "provider", "model", "keyId", "outcome", "path")
"""The blob columns in order: `blob1` is `schema`, `blob2` `kind`, and so on."""
DOUBLES = ("status", "attempts", "firstByteMs", "cached", "upstreamStatus")
"""The double columns in order: `double1` is `status`, what the client got (for an attempt point,
the attempt's answer); `double2` `attempts` (for an attempt point, its number); `double3`
`firstByteMs`, milliseconds from the Worker receiving the request (or sending the attempt) to the
upstream's answer headers, -1 when nothing was sent; `double4` `cached`, 1 when AI Gateway
answered from its cache; `double5` `upstreamStatus`, the answer of the point's key (0: none
came, -1: no key was sent), which `aigw keys` judges the key by."""
MAX_BLOB_CHARACTERS = 256
"""Each blob is cut to this many characters: at most 8 x 256 x 3 bytes of UTF-8, well below the
16 KB a data point may hold, whatever a client names its model or path."""
MAX_INDEX_BYTES = 96


Outcome = Literal[
    "answered",
    "provider_rate_limited",
    "provider_refused",
    "provider_error",
    "request_error",
    "gateway_refusal",
    "budget_exceeded",
    "pool_exhausted",
    "unauthenticated",
    "client_token_expired",
    "provider_not_allowed",
    "endpoint_not_allowed",
    "model_not_allowed",
    "rate_limited",
    "bad_request",
    "worker_error",
]
POLICY_OUTCOMES: tuple[Outcome, ...] = (
    "client_token_expired",
    "provider_not_allowed",
    "endpoint_not_allowed",
    "model_not_allowed",
    "rate_limited",
    "budget_exceeded",
)
"""The client-policy refusals (DESIGN §4), each its own outcome; `budget_exceeded` is AI
Gateway's spend limit refusing a client's (or the gateway's) budget."""
OWN_OUTCOMES: dict[str, Outcome] = {
    "invalid_client_token": "unauthenticated",
    **{code: code for code in POLICY_OUTCOMES},
    "pool_exhausted": "pool_exhausted",
    "gateway_rate_limited": "gateway_refusal",
    "gateway_auth_failed": "gateway_refusal",
    "upstream_key_rejected": "provider_refused",
    "upstream_unreachable": "provider_error",
    "upstream_timeout": "provider_error",
    "unknown_route": "bad_request",
    "invalid_path": "bad_request",
    "method_not_allowed": "bad_request",
    "body_too_large": "bad_request",
    # A binding the Worker needs is missing: the deployment's fault, not the client's.
    "no_provider_keys": "worker_error",
    "rate_limit_unavailable": "worker_error",
}
"""The outcome of each error code the Worker answers with itself (infra/worker/errors.py lists
them all); a code it does not know is `worker_error`."""
REFUSED_STATUSES = frozenset({401, 402, 403})


def outcome(status: int, code: str | None, gateway_refused: bool = False) -> Outcome:
    """What an answer says: `code` is the Worker's own error code when it answered itself,
    `gateway_refused` when AI Gateway refused and its answer was passed through; `status` 0 is
    an upstream that could not be reached."""
    if code is not None:
        return OWN_OUTCOMES.get(code, "worker_error")
    if gateway_refused:
        return "gateway_refusal"
    if status == 0 or status >= 500:
        return "provider_error"
    if status == 429:
        return "provider_rate_limited"
    if status in REFUSED_STATUSES:
        return "provider_refused"
    if status >= 400:
        return "request_error"
    return "answered"


@dataclass(frozen=True)
class Event:
    """What the Worker knows of a request or an attempt when it writes its point."""

    kind: Kind
    client: str
    """The authenticated client's name; "" before (or without) authentication."""
    provider: str
    """The route's provider slug; "" when no route matched."""
    model: str
    """The model the request names (`endpoints.request_model`: path or body, the one read the key
    pool uses too), "" when it names none or the Worker did not read one."""
    key_id: str
    """The id of the pool key of the answer; "" when no key was sent."""
    outcome: Outcome
    path: str
    """The provider path below the gateway (`/openai/chat/completions`), without the query."""
    status: int
    attempts: int
    first_byte_ms: float
    cached: bool
    upstream_status: int


@dataclass(frozen=True)
class DataPoint:
    """The argument of `writeDataPoint`."""

    indexes: tuple[str]
    blobs: tuple[str, ...]
    doubles: tuple[float, ...]

    def as_json(self) -> dict[str, list[str] | list[float]]:
        """As the Worker passes it (and tests/vectors/analytics/points.json writes it)."""
        return {
            "indexes": list(self.indexes),
            "blobs": list(self.blobs),
            "doubles": list(self.doubles),
        }


def index_of(provider: str, key_id: str) -> str:
    """The sampling key: the pool key; "" for points that name none. Provider slugs and key ids
    are ASCII, so characters are bytes here."""
    return f"{provider}/{key_id}"[:MAX_INDEX_BYTES] if key_id else ""


def bounded(text: str) -> str:
    """A blob cut to MAX_BLOB_CHARACTERS (UTF-16 code units, as JavaScript counts them)."""
    units = text.encode("utf-16-le")
    if len(units) <= 2 * MAX_BLOB_CHARACTERS:
        return text
    # A cut through a surrogate pair leaves half of it, which UTF-8 writes as U+FFFD in both.
    return units[: 2 * MAX_BLOB_CHARACTERS].decode("utf-16-le", "replace")


def data_point(event: Event) -> DataPoint:
    """The data point the Worker writes for `event`."""
    blobs = (
        SCHEMA,
        event.kind,
        event.client,
        event.provider,
        event.model,
        event.key_id,
        event.outcome,
        event.path,
    )
    doubles = (
        float(event.status),
        float(event.attempts),
        float(event.first_byte_ms),
        1.0 if event.cached else 0.0,
        float(event.upstream_status),
    )
    return DataPoint(
        indexes=(index_of(event.provider, event.key_id),),
        blobs=tuple(bounded(blob) for blob in blobs),
        doubles=doubles,
    )


def column(name: str) -> str:
    """The SQL column that holds a named field: `client` is `blob3`, `status` `double1`."""
    if name in BLOBS:
        return f"blob{BLOBS.index(name) + 1}"
    if name in DOUBLES:
        return f"double{DOUBLES.index(name) + 1}"
    raise KeyError(name)
