"""What each pool key has left, and how keys are chosen, rested and refused by it (DESIGN §4
"Keys"); the providers' rate-limit headers it learns that from are read in `rate_limit_headers`.

`worker_template/key_limits.js.j2` implements the same functions, and
`tests/vectors/key_limits.json` runs against both. Everything here is per isolate: each learns a
key's state from its own answers, which carry the provider's count for the key, so no storage is
shared. The providers state their limits per model, so a key's state is kept per model the
request names (`PoolKey`), bounded in number. The key choice and the rests are arithmetic on a
few numbers per key: no await, and nothing allocated per request once a model's state exists.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

MAX_COOLDOWN_MS = 3_600_000
"""The longest rest anything an answer says can impose (a `Retry-After`, a rate-limit header), so
that a bogus or lying value cannot retire a key for good."""

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
POOL_EXHAUSTED = "pool_exhausted"


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
