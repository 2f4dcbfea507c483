"""What each pool key has left, read from the providers' rate-limit headers, and how keys are
chosen, rested and refused by it (DESIGN §4 "Keys").

`worker_template/key_limits.js.j2` implements the same functions, and
`tests/vectors/key_limits.json` runs against both. Everything here is per isolate: each learns a
key's state from its own answers, which carry the provider's count for the key, so no storage is
shared. The providers state their limits per model, so a key's state is kept per model the
request names (`PoolKey`), bounded in number. The key choice and the rests are arithmetic on a
few numbers per key: no await, and nothing allocated per request once a model's state exists.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from infra.providers import PROVIDERS

MAX_COOLDOWN_MS = 3_600_000
"""The longest rest anything an answer says can impose (a `Retry-After`, a rate-limit header), so
that a bogus or lying value cannot retire a key for good."""

OPENAI_STYLE = "openai"
"""OpenAI's rate-limit headers: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, the reset a
Go duration (`1s`, `6m0s`, `1m30.5s`, `120ms`) until the limit is whole again."""
ANTHROPIC_STYLE = "anthropic"
"""Anthropic's: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,
reset}`, the reset an RFC 3339 time when the limit is fully replenished."""
RATE_LIMIT_HEADERS: dict[str, dict[str, list[list[str]]]] = {
    OPENAI_STYLE: {
        "requests": [
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ]
        ],
        "tokens": [
            ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"]
        ],
    },
    ANTHROPIC_STYLE: {
        "requests": [
            [
                "anthropic-ratelimit-requests-limit",
                "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-requests-reset",
            ]
        ],
        "tokens": [
            [
                f"anthropic-ratelimit-{kind}-limit",
                f"anthropic-ratelimit-{kind}-remaining",
                f"anthropic-ratelimit-{kind}-reset",
            ]
            for kind in ("tokens", "input-tokens", "output-tokens")
        ],
    },
}
"""Each style's headers as [limit, remaining, reset] per limit; of several token limits, the one
with the least left counts."""
NO_RATE_LIMIT_HEADERS = ("google-ai-studio",)
"""Providers that send no such headers (Google states its limits in the body of a 429 only)."""
RATE_LIMIT_STYLES = {
    slug: ANTHROPIC_STYLE if slug == "anthropic" else OPENAI_STYLE
    for slug in PROVIDERS
    if slug not in NO_RATE_LIMIT_HEADERS
}
"""The header style each provider's answers are read with. OpenAI's names are Groq's too; on
providers that use other names (or other formats) nothing matches, and nothing is learnt."""
CACHE_STATUS_HEADER = "cf-aig-cache-status"
CACHE_HIT = "HIT"
"""An answer AI Gateway served from its cache carries the headers of the answer it stored: stale
counts, never read."""
RETRY_AFTER_MS_HEADER = "retry-after-ms"
"""OpenAI's `Retry-After` in milliseconds, which the official SDKs honour before `Retry-After`."""

SHARE_FLOOR = 1 / 4096
SHARE_GROWTH = 1.1
"""An isolate's share of a key's refill: halved by each 429 that met a key it had counted on (other
isolates took what it saw left), grown by this factor with each answer that is not a 429, at most
1 and at least `SHARE_FLOOR`. Multiplicative both ways, so the 429s it costs to hold a share are
about the same whether a key is shared by 3 isolates or by 1,000."""

MODEL_LIMIT_PROVIDERS = ("openai", "anthropic", "google-ai-studio", "groq")
"""Providers whose limits are per model, in their own words (docs/worker/failover.md lists the
sources): OpenAI gives its limits per model and tier (platform.openai.com/docs/guides/rate-limits)
and its 429s name the model ("Rate limit reached for gpt-4o in organization … on tokens per min
(TPM)"); Anthropic "Rate limits are applied separately for each model; therefore you can use
different models up to their respective limits simultaneously" (docs.anthropic.com/en/api/
rate-limits); Google "Limits vary depending on the specific model being used" (ai.google.dev/
gemini-api/docs/rate-limits); Groq's limits are listed per model (console.groq.com/docs/
rate-limits). A request to them is known by the model it names, and a key's state is kept per
model; other providers' keys keep one state."""
QUOTA_BODY_PROVIDERS = ("google-ai-studio",)
"""Providers that say in a 429's body whether its quota is per model (Google's `quotaId`s with
`PerModel`): a 429 for a quota that is not (a project's) rests the whole key."""
PER_MODEL_QUOTA = "PerModel"
MODELS_PER_KEY = 32
"""At most this many models have a state of their own on one key; a model that finds no room
shares the key's `others` state. The names are the clients', and an isolate's memory is not
theirs to fill."""
MODEL_IDLE_MS = 60_000
"""A model's state is forgotten to make room only once no request named it for this long and it
holds nothing ahead (no rest, no count short of its refill): the providers' limits are per
minute, so by then it says nothing a fresh state would not. A client naming new models as fast
as it likes can only use the room that idle models leave, never push out a model in use."""
REFUSED_MODELS_FOR_WHOLE = 2
"""A key refused on this many models, and serving none for as long as a refusal rests, rests
whole: it is the key, not the models (a project that may use no model)."""
REQUEST_TOO_LARGE = "^Request too large for .*Requested [0-9]+"
"""OpenAI's 429 for one request over the key's whole tokens-per-minute limit ("Request too large for
gpt-4o in organization … on tokens per min (TPM): Limit 30000, Requested 32042. …"): every key of
the tier would refuse it and none is at fault, so it goes to the client as it is, with no failover
and no rest. Its message starts so; a rate limit's starts "Rate limit reached for", and the model
name a client chooses comes after either."""
_REQUEST_TOO_LARGE = re.compile(REQUEST_TOO_LARGE)

POOL_EXHAUSTED = "pool_exhausted"

COUNT = "[0-9]{1,15}"
MILLISECONDS = "[0-9]{1,15}(?:\\.[0-9]{1,9})?"
GO_DURATION_PART = "([0-9]{1,15}(?:\\.[0-9]{1,9})?)(h|ms|m|s|us|ns)"
"""One number and unit of a Go duration; a duration is one or more of them."""
UNIT_MS = {"h": 3_600_000.0, "m": 60_000.0, "s": 1_000.0, "ms": 1.0, "us": 0.001, "ns": 0.000001}
RFC3339 = (
    "([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\\.[0-9]{1,9})?"
    "(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
"""The patterns of the header values read, whole (the Worker anchors them with ^ and $)."""
_COUNT = re.compile(COUNT)
_MILLISECONDS = re.compile(MILLISECONDS)
_GO_DURATION = re.compile(f"(?:{GO_DURATION_PART})+")
_GO_DURATION_PART = re.compile(GO_DURATION_PART)
_RFC3339 = re.compile(RFC3339)


def parse_count(value: str | None) -> int | None:
    """A count header (`limit`, `remaining`): a non-negative integer, else None."""
    value = (value or "").strip()
    return int(value) if _COUNT.fullmatch(value) else None


def parse_duration_ms(value: str | None) -> float | None:
    """A Go duration as OpenAI's reset headers write it (`1s`, `6m0s`, `1m30.5s`, `120ms`) in
    milliseconds, else None (a bare number has no unit, and is not read)."""
    value = (value or "").strip()
    if not _GO_DURATION.fullmatch(value):
        return None
    total = 0.0
    for number, unit in _GO_DURATION_PART.findall(value):
        total += float(number) * UNIT_MS[unit]
    return total


def parse_timestamp_ms(value: str | None) -> int | None:
    """An RFC 3339 time as Anthropic's reset headers write it, in ms since the epoch, else None."""
    match = _RFC3339.fullmatch((value or "").strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(n)) for n in range(1, 7))
    if not (
        year >= 1970
        and 1 <= month <= 12
        and 1 <= day <= 31
        and hour <= 23
        and minute <= 59
        and second <= 60
    ):
        return None
    fraction = match.group(7)
    millis = int((fraction[1:] + "00")[:3]) if fraction else 0
    offset = 0
    if match.group(8) is None:
        offset_hours, offset_minutes = int(match.group(10)), int(match.group(11))
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset = (offset_hours * 60 + offset_minutes) * 60_000
        offset = offset if match.group(9) == "+" else -offset
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds * 1000 + millis - offset


def retry_after_ms_value(value: str | None) -> int | None:
    """A `retry-after-ms` header in whole milliseconds (rounded up, capped), else None."""
    value = (value or "").strip()
    if not _MILLISECONDS.fullmatch(value):
        return None
    return min(math.ceil(float(value)), MAX_COOLDOWN_MS)


@dataclass
class KeyState:
    """What one isolate knows of one key: its rests and the provider's last count for it.

    `requests` and `tokens` are each a limit as last read: its size (0 until read), what was left,
    when that was read, and how fast it refills (per ms, 0 when not known).
    """

    rest_until: float = 0
    rest_stated: bool = False
    """Whether the rest ends at a time the provider stated, or at a guess of the Worker's own."""
    requests_limit: int = 0
    requests_left: float = 0
    requests_at: float = 0
    requests_rate: float = 0
    tokens_limit: int = 0
    tokens_left: float = 0
    tokens_at: float = 0
    tokens_rate: float = 0
    share: float = 1.0
    """This isolate's share of the key's refill (see `SHARE_GROWTH`)."""
    sent: int = 0
    """Requests this isolate sent with the key."""
    counted: int = 0
    """How many of them the provider's last count read here already includes."""
    credit: float = 0
    """The key's turn in a weighted round (`choose`)."""
    used_at: float = 0
    """When a request was last sent with the key for this state (or it was made): idle ones are
    forgotten first (`model_state`)."""
    refused_at: float = -math.inf
    """When the provider last refused the key this state's model (`refuse_model`)."""


@dataclass
class PoolKey:
    """What one isolate knows of one key: a state per model the requests name, bounded in number
    (`model_state`), one for requests that name none, and the verdicts on the key itself."""

    whole: KeyState = field(default_factory=KeyState)
    """Rests of the key for every model (a refusal of the key, billing exhausted, a project's
    quota): only its rest is used."""
    own: KeyState = field(default_factory=KeyState)
    """Requests that name no model (listings, files, batches), and every request to a provider
    whose limits are not per model."""
    others: KeyState = field(default_factory=KeyState)
    """Models that found no room of their own (`MODELS_PER_KEY`)."""
    models: dict[str, KeyState] = field(default_factory=dict)
    served_at: float = -math.inf
    """When the key last answered a request with a 2xx, whatever its model."""


def model_state(key: PoolKey, model: str | None, now: float) -> KeyState:
    """The key's state for requests naming `model`: its own, made on first use while there is
    room or an idle model's to take (the least recently used of those), else `others`."""
    if model is None:
        return key.own
    state = key.models.get(model)
    if state is not None:
        return state
    if len(key.models) >= MODELS_PER_KEY:
        idle = None
        for name, candidate in key.models.items():
            if forgettable(candidate, now) and (
                idle is None or candidate.used_at < key.models[idle].used_at
            ):
                idle = name
        if idle is None:
            return key.others
        del key.models[idle]
    state = key.models[model] = KeyState(used_at=now)
    return state


def forgettable(state: KeyState, now: float) -> bool:
    """Whether a model's state says nothing a fresh one would not: idle for `MODEL_IDLE_MS`, no
    rest ahead, its counts refilled."""
    return (
        now - state.used_at >= MODEL_IDLE_MS
        and state.rest_until <= now
        and stated_until(state, now, 1.0) <= now
    )


def sending(state: KeyState, now: float) -> int:
    """Count a request sent with the key; returns its mark, to hand to `observe` with its answer."""
    mark = state.sent
    state.sent += 1
    state.used_at = now
    return mark


def observe(
    state: KeyState, style: str | None, headers: Mapping[str, str], now: float, mark: int
) -> bool:
    """Read the provider's rate-limit headers of an answer (any status), if it sent any.

    Bad or absent values are ignored, one limit at a time. An answer to a request sent before the
    one whose answer was read last says less than that one, and is not read; nor is an answer AI
    Gateway served from its cache. Returns whether anything was read.
    """
    family = RATE_LIMIT_HEADERS.get(style or "")
    if family is None or mark < state.counted:
        return False
    requests = _allowance(headers, family["requests"][0], style, now)
    tokens = None
    for names in family["tokens"]:
        candidate = _allowance(headers, names, style, now)
        if candidate is not None and (
            tokens is None or candidate[1] * tokens[0] < tokens[1] * candidate[0]
        ):
            tokens = candidate
    if requests is None and tokens is None:
        return False
    if headers.get(CACHE_STATUS_HEADER) == CACHE_HIT:
        return False
    state.counted = mark + 1
    if requests is not None:
        limit, left, rate = requests
        same = limit == state.requests_limit
        state.requests_limit, state.requests_left, state.requests_at = limit, left, now
        state.requests_rate = rate if rate is not None else state.requests_rate if same else 0
    if tokens is not None:
        limit, left, rate = tokens
        same = limit == state.tokens_limit
        state.tokens_limit, state.tokens_left, state.tokens_at = limit, left, now
        state.tokens_rate = rate if rate is not None else state.tokens_rate if same else 0
    return True


def _allowance(
    headers: Mapping[str, str], names: Sequence[str], style: str | None, now: float
) -> tuple[int, float, float | None] | None:
    """(limit, left, refill per ms or None) from one limit's headers, else None.

    Both styles' reset is when the limit is whole again, not when the next request is allowed:
    what is missing refills over it, so the next request comes after reset / (limit - remaining).
    """
    remaining = parse_count(headers.get(names[1]))
    limit = parse_count(headers.get(names[0]))
    if remaining is None or limit is None or limit == 0:
        return None
    left = float(min(remaining, limit))
    reset_text = headers.get(names[2])
    if style == ANTHROPIC_STYLE:
        when = parse_timestamp_ms(reset_text)
        reset = None if when is None else max(when - now, 0.0)
    else:
        reset = parse_duration_ms(reset_text)
    if reset is None or left >= limit:
        return limit, left, None
    if reset <= 0:
        # Whole again already.
        return limit, float(limit), None
    return limit, left, (limit - left) / reset


def answered(state: KeyState) -> None:
    """An answer that was not a 429: the isolate's share of the key grows back."""
    state.share = min(1.0, state.share * SHARE_GROWTH)


def contended(state: KeyState) -> None:
    """A 429 from a key whose count was known here: others took what this isolate saw left."""
    if state.requests_limit > 0 or state.tokens_limit > 0:
        state.share = max(SHARE_FLOOR, state.share / 2)


def rest(state: KeyState, until: float, stated: bool) -> None:
    """Keep the key out of use for this state until `until`, never shortening a longer rest;
    `stated` says whether the provider stated that time."""
    if until >= state.rest_until:
        state.rest_until, state.rest_stated = until, stated


def served(key: PoolKey, state: KeyState, now: float) -> None:
    """A 2xx: the key serves this state's model (it is not refused on every model)."""
    key.served_at = now
    state.refused_at = -math.inf


def refuse_model(key: PoolKey, state: KeyState, until: float, now: float) -> None:
    """The provider refused the key this state's model (the key's project may not use it): the
    key rests for it until `until`, and whole once it is refused on `REFUSED_MODELS_FOR_WHOLE`
    models while serving none for as long as a refusal rests."""
    rest(state, until, False)
    state.refused_at = now
    refused = sum(
        1
        for other in key.models.values()
        if other.refused_at > -math.inf and other.rest_until > now
    )
    # Serving any model within as long as the refusal rests proves the key is not refused whole.
    if refused >= REFUSED_MODELS_FOR_WHOLE and key.served_at <= now - (until - now):
        rest(key.whole, until, False)


def stated_until(state: KeyState, now: float, share: float = 0) -> float:
    """Until when the provider's own statements keep the key from taking a request for this
    state: its count at 0 (refilling at this isolate's share of the rate, or at `share` of it if
    given), or a stated rest."""
    share = share or state.share
    until = state.rest_until if state.rest_stated else 0.0
    if state.requests_limit > 0 and state.requests_rate > 0:
        # The requests sent here since the count was read are gone too.
        missing = 1 + (state.sent - state.counted) - state.requests_left
        if missing > 0:
            ready = state.requests_at + missing / (state.requests_rate * share)
            until = max(until, min(ready, state.requests_at + MAX_COOLDOWN_MS))
    if state.tokens_limit > 0 and state.tokens_rate > 0:
        missing = 1 - state.tokens_left
        if missing > 0:
            ready = state.tokens_at + missing / (state.tokens_rate * share)
            until = max(until, min(ready, state.tokens_at + MAX_COOLDOWN_MS))
    return until


def guessed_until(state: KeyState) -> float:
    """Until when a rest of the Worker's own guessing (no time stated) keeps the key out of use."""
    return state.rest_until if not state.rest_stated else 0.0


def key_stated_until(key: PoolKey, state: KeyState, now: float, share: float = 0) -> float:
    """`stated_until` of the key for a state, its rests of the whole key included."""
    return max(stated_until(state, now, share), stated_until(key.whole, now, share))


def key_guessed_until(key: PoolKey, state: KeyState) -> float:
    """`guessed_until` of the key for a state, its rests of the whole key included."""
    return max(guessed_until(state), guessed_until(key.whole))


def share_left(state: KeyState, now: float) -> float:
    """The share of the key's limits left, as this isolate sees it now (1 when not known)."""
    share = 1.0
    if state.requests_limit > 0:
        limit = state.requests_limit
        refilled = state.share * state.requests_rate * (now - state.requests_at)
        spent = state.sent - state.counted
        share = (min(limit, state.requests_left + refilled) - spent) / limit
    if state.tokens_limit > 0:
        limit = state.tokens_limit
        refilled = state.share * state.tokens_rate * (now - state.tokens_at)
        share = min(share, min(limit, state.tokens_left + refilled) / limit)
    return share


def weight(state: KeyState, now: float, unknown: float) -> float:
    """How many requests the key has left, as this isolate sees it now: its share left of its
    requests limit, or of `unknown` when that limit was never read."""
    limit = state.requests_limit if state.requests_limit > 0 else unknown
    return max(0.0, limit * share_left(state, now))


def choose(
    keys: Sequence[str],
    pool: Sequence[PoolKey],
    start: int,
    tried: Collection[str],
    now: float,
    model: str | None,
) -> int | None:
    """The index of the key to try next for a request naming `model`, else None.

    Of the untried keys that are not resting: while no key's count for the model was ever read,
    the first in rotation order from `start`; else the keys take turns in a smooth weighted round
    robin (as nginx's upstreams do) weighted by what each has left for the model, so that each
    carries load in proportion to it, and a key never read weighs as much as the largest limit
    read, to be read in turn. Else the untried key resting on a guess that recovers soonest (the
    Worker never refuses on a guess); else None (every untried key rests on a time its provider
    stated).
    """
    states = [model_state(key, model, now) for key in pool]
    unknown = 0.0
    for state in states:
        unknown = max(unknown, state.requests_limit, 1 if state.tokens_limit > 0 else 0)
    # A retry in the same request takes the next turn; only a request's first pick adds turns.
    first = not tried
    best, best_credit = None, -math.inf
    guess, guess_until = None, math.inf
    total = 0.0
    count = len(keys)
    for step in range(count):
        index = (start + step) % count
        if keys[index] in tried:
            continue
        state = states[index]
        stated = key_stated_until(pool[index], state, now)
        guessed = key_guessed_until(pool[index], state)
        if stated <= now and guessed <= now:
            if unknown == 0:
                return index
            if first:
                added = weight(state, now, unknown)
                state.credit += added
                total += added
            if state.credit > best_credit:
                best, best_credit = index, state.credit
        elif guessed > stated and guessed < guess_until:
            guess, guess_until = index, guessed
    if best is None:
        return guess
    states[best].credit -= total
    return best


def exhausted_until(pool: Sequence[PoolKey], now: float, model: str | None) -> float | None:
    """When every key rests, for `model`, on a time its provider stated: the soonest such time,
    else None.

    The time is the provider's, without this isolate's share: the soonest a key may take a
    request again, whoever sends it (a client told so may come back through another isolate).
    """
    soonest = math.inf
    for key in pool:
        state = model_state(key, model, now)
        stated = key_stated_until(key, state, now)
        if stated <= now or key_guessed_until(key, state) > stated:
            return None
        soonest = min(soonest, key_stated_until(key, state, now, 1.0))
    return soonest


def request_too_large(status: int, error: Mapping[str, object]) -> bool:
    """Whether an answer is OpenAI's 429 for a request over the key's whole tokens-per-minute
    limit (`REQUEST_TOO_LARGE`): the request's own fault, not the key's."""
    message = error.get("message")
    return status == 429 and isinstance(message, str) and bool(_REQUEST_TOO_LARGE.match(message))


TOO_LARGE = "too-large"
"""A 429 for a request the key would refuse however long it waited: to the client as it came,
no failover, no rest."""
TOO_LARGE_NOW = "too-large-now"
"""A 429 for a request larger than what the key has left, while smaller ones fit: another key
is tried, and this one rests for nothing."""


def size_refusal(
    style: str | None, headers: Mapping[str, str], now: float, declared: int | None
) -> str | None:
    """Whether a 429 is about the request's size rather than the key's use, by its own rate-limit
    headers and the output tokens the request declares (`max_tokens`, which Anthropic counts
    against its output limit when the request starts): `TOO_LARGE` when the request declares
    more than a token limit's whole size, or when every limit the 429 states is whole (nothing
    was spent, so nothing is to wait for); `TOO_LARGE_NOW` when it states room for one more
    request and tokens left, but fewer than the request declares; else None (a rate limit).

    Anthropic's such 429 reads "This request would exceed the rate limit for your organization
    (…) of 8,000 output tokens per minute. … Please reduce the prompt length or the maximum
    tokens requested, or try again later." while its headers show the output tokens whole.
    """
    family = RATE_LIMIT_HEADERS.get(style or "")
    if family is None:
        return None
    limits = [_allowance(headers, names, style, now) for names in family["tokens"]]
    tokens = [limit for limit in limits if limit is not None]
    requests = _allowance(headers, family["requests"][0], style, now)
    stated = tokens + ([] if requests is None else [requests])
    if not stated:
        return None
    if declared is not None and any(limit < declared for limit, _, _ in tokens):
        return TOO_LARGE
    if all(left >= limit for limit, left, _ in stated):
        return TOO_LARGE
    room = requests is None or requests[1] >= 1
    if declared is not None and tokens and room:
        least = min(left for _, left, _ in tokens)
        if 1 <= least < declared:
            return TOO_LARGE_NOW
    return None


def per_model_quota(quota_ids: Sequence[object]) -> bool:
    """Whether every quota a Google 429's `QuotaFailure` names (`quota_ids`) is per model
    (`quotaId` with `PerModel`): the key then rests for the request's model only."""
    return bool(quota_ids) and all(isinstance(q, str) and PER_MODEL_QUOTA in q for q in quota_ids)


def pool_exhausted_wait(until: float, now: float) -> tuple[int, int]:
    """The `Retry-After` (whole seconds, rounded up) and `retry-after-ms` of a `pool_exhausted`
    answer when the soonest key takes a request again at `until`."""
    wait = max(1, math.ceil(until - now))
    return math.ceil(wait / 1000), wait


def pool_exhausted_message(slug: str, seconds: int) -> str:
    """The message of the `429 pool_exhausted` answer."""
    return (
        f"every {slug} API key of this gateway is at its rate limit, as the provider stated: "
        f"nothing was sent; retry after {seconds} s"
    )
