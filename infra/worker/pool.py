"""The key pool and the failover loop: one provider's keys in an isolate, and a request sent with
one key after another until an answer needs no failover.

`worker_template/pool.js.j2` is its twin. What each key has left, and how a key is chosen and
rested by it, is `key_limits`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from infra.providers import GATEWAY_TOKEN, Provider
from infra.worker import key_limits, rate_limit_headers
from infra.worker.answers import RATE_LIMIT_ERROR_TYPE, error, final_answer, upstream_timeout
from infra.worker.config import (
    ClientRequest,
    Response,
    Send,
    UpstreamRequest,
    UpstreamResponse,
    WorkerConfig,
)
from infra.worker.headers import CACHE_KEY_HEADER, cache_key, forwarded_headers
from infra.worker.key_limits import KeyState, PoolKey
from infra.worker.policy import policy_of_client
from infra.worker.routing import Route
from infra.worker.scrubbing import error_document, scrubbed
from infra.worker.verdicts import (
    FAILOVER_STATUSES,
    HELD_MODEL_REFUSED,
    HELD_WHOLE,
    RATE_LIMITED_COOLDOWN_MS,
    declared_tokens,
    error_of,
    gateway_answer,
    gateway_refusal,
    held_rest_until,
    held_scope,
    insufficient_quota,
    key_invalid_400,
    model_refusal,
    retry_delay_ms,
    server_error_failover,
    stated_delay_ms,
    whole_key_quota,
)


@dataclass
class KeyPool:
    """One provider's keys in this isolate: where its rotation is, and what each key has left
    for each model (`key_limits` keeps, reads and weighs that)."""

    keys: tuple[str, ...] = field(repr=False)
    next: int
    source: str = field(default="", repr=False)
    """The binding text the keys came from."""
    states: list[PoolKey] = field(init=False, repr=False)
    """Each key's states, in the order of `keys`."""
    indexes: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.states = [PoolKey() for _ in self.keys]
        self.indexes = {key: index for index, key in enumerate(self.keys)}

    def key(self, key: str) -> PoolKey:
        """What this isolate knows of `key`."""
        return self.states[self.indexes[key]]

    def state(self, key: str, model: str | None, now_ms: float) -> KeyState:
        """What this isolate knows of `key` for requests naming `model`."""
        return key_limits.model_state(self.key(key), model, now_ms)

    def start(self) -> int:
        """The index this request starts at; the next request starts one further."""
        index = self.next % len(self.keys)
        self.next += 1
        return index

    def pick(
        self, start: int, tried: set[str], now_ms: int, model: str | None = None
    ) -> str | None:
        """The untried key with the most left for `model` that is not resting (rotation order
        from `start` among equals), else the one resting on a guess that recovers soonest, else
        None."""
        index = key_limits.choose(self.keys, self.states, start, tried, now_ms, model)
        return None if index is None else self.keys[index]

    def rest(
        self,
        key: str,
        until_ms: int,
        *,
        stated: bool = False,
        model: str | None = None,
        now_ms: int = 0,
    ) -> None:
        """Keep `key` out of use until `until_ms` (for `model` only, if given, else for every
        model), never shortening a longer rest; `stated` when the provider stated the time."""
        pool_key = self.key(key)
        target = pool_key.whole if model is None else self.state(key, model, now_ms)
        key_limits.rest(target, until_ms, stated)

    def rest_held(
        self, key: str, until_ms: int, scope: str, model: str | None, now_ms: int
    ) -> None:
        """Apply a held rest of `key` (see `held_scope`) once another key served the request."""
        pool_key = self.key(key)
        state = key_limits.model_state(pool_key, model, now_ms)
        if scope == HELD_MODEL_REFUSED:
            key_limits.refuse_model(pool_key, state, until_ms, now_ms)
        else:
            key_limits.rest(pool_key.whole if scope == HELD_WHOLE else state, until_ms, False)

    def exhausted_until(self, now_ms: int, model: str | None = None) -> float | None:
        """When every key rests for `model` on a time its provider stated, the soonest; else
        None."""
        return key_limits.exhausted_until(self.states, now_ms, model)

    def learn(
        self,
        key: str,
        mark: int,
        provider: Provider,
        answer: UpstreamResponse,
        status: int,
        document: object,
        now_ms: int,
        model: str | None,
        body: bytes,
    ) -> str | None:
        """Learn what an answer says of `key` for `model` (`mark` from `key_limits.sending`):
        its rate-limit headers, and on a 429 its rest. On a 429 about the request's size, its
        verdict (`rate_limit_headers.size_refusal`): `TOO_LARGE` goes to the client as it came,
        with no failover and no rest; after `TOO_LARGE_NOW` another key is tried, and none
        rests."""
        pool_key = self.key(key)
        state = key_limits.model_state(pool_key, model, now_ms)
        known = state.requests_limit > 0 or state.tokens_limit > 0
        style = rate_limit_headers.RATE_LIMIT_STYLES.get(provider.slug)
        read = rate_limit_headers.observe(state, style, answer.headers, now_ms, mark)
        if status != 429:
            if status < 400:
                key_limits.answered(state)
            if 200 <= status <= 299:
                key_limits.served(pool_key, state, now_ms)
            return None
        if rate_limit_headers.request_too_large(status, error_of(document)):
            return rate_limit_headers.TOO_LARGE
        if not insufficient_quota(status, document):
            declared = declared_tokens(body)
            size = rate_limit_headers.size_refusal(style, answer.headers, now_ms, declared)
            if size is not None:
                return size
        delay = stated_delay_ms(answer.headers, now_ms, retry_delay_ms(status, document))
        target = pool_key.whole if whole_key_quota(provider, status, document) else state
        if delay is not None:
            key_limits.rest(target, now_ms + delay, True)
        elif not read or key_limits.stated_until(target, now_ms) <= now_ms:
            # Nothing stated when the key takes requests again: a guess, still tried as a last
            # resort.
            key_limits.rest(target, now_ms + RATE_LIMITED_COOLDOWN_MS, False)
        if known and not insufficient_quota(status, document):
            key_limits.contended(state)
        return None


def proxy(
    config: WorkerConfig,
    env: Mapping[str, str],
    clock_ms: Callable[[], int],
    request: ClientRequest,
    headers: dict[str, str],
    matched: Route,
    client: str,
    pool: KeyPool,
    named: str | None,
    send: Send,
) -> Response:
    """Try keys in rotation until one gets an answer no other key could better; `named` is the
    model the request names (`endpoints.request_model`)."""
    provider = matched.provider
    upstream_path = matched.upstream_path()
    base = forwarded_headers(config, client, headers)
    if config.cache and CACHE_KEY_HEADER not in base:
        scope = client if config.cache_scope == "client" else None
        base[CACHE_KEY_HEADER] = cache_key(request.method, upstream_path, base, request.body, scope)
    gateway_token = env.get(GATEWAY_TOKEN, "").strip()
    if gateway_token:
        base["cf-aig-authorization"] = f"Bearer {gateway_token}"
    secrets = (*pool.keys, gateway_token)
    # GET carries no body upstream; DELETE only if it has one.
    sends_body = request.method == "POST" or (request.method == "DELETE" and request.body)
    body = request.body if sends_body else None
    # Where the providers' limits are per model, a request is known by the model it names.
    model = named if provider.slug in key_limits.MODEL_LIMIT_PROVIDERS else None
    started = clock_ms()
    start = pool.start()
    tried: set[str] = set()
    # Keys refused (401/402/403, or the model refused) or otherwise condemned for long in
    # this request: the key, the end of its rest, and the model when only the model is
    # refused. They rest only once another key answers the same request with a 2xx: when
    # no key does, the request (a bogus OpenAI-Organization, a model no key may use) or the
    # gateway's own auth is at fault, not the keys, and resting them all would let any
    # client retire the whole pool.
    refused: list[tuple[str, int, str]] = []
    # The last attempt's answer; None when it did not reach the gateway.
    answer: UpstreamResponse | None = None
    for _ in range(config.max_attempts):
        key = pool.pick(start, tried, clock_ms(), model)
        if key is None:
            # The keys left all rest for this model on times their provider stated: none is
            # sent to, and when every key of the pool does, the client is told when one
            # will take it.
            until = pool.exhausted_until(clock_ms(), model)
            if until is not None and len(tried) < len(pool.keys):
                return pool_exhausted(provider, until, clock_ms())
            break
        tried.add(key)
        mark = key_limits.sending(pool.state(key, model, clock_ms()), clock_ms())
        attempt_headers = {
            **base,
            provider.key_header: provider.key_prefix + key,
            "cf-aig-metadata": json.dumps(
                {"client": client, "keyId": key_id(key)}, separators=(",", ":")
            ),
        }
        result = send(
            UpstreamRequest(
                request.method, config.gateway_url + upstream_path, attempt_headers, body
            )
        )
        if result == "timeout":
            return upstream_timeout()
        if result == "network-error":
            answer = None
            continue
        answer = result
        now = clock_ms()
        document = error_document(answer.status, answer.headers, answer.body)
        gateway_code = gateway_refusal(document)
        if gateway_code is not None:
            # The gateway itself refused: no key is at fault (none rests), and another key
            # would meet the same refusal (and count against the same limit) again.
            policy = policy_of_client(config, client)
            return gateway_answer(gateway_code, scrubbed(answer, secrets), client, policy)
        # A provider's 400 refusing the key counts as a 401 (it is passed through if last).
        key_invalid = key_invalid_400(provider.slug, answer.status, document)
        status = 401 if key_invalid else answer.status
        refuses_model = model_refusal(provider, status, document, model)
        held = held_rest_until(status, document, now, refuses_model)
        if held is not None:
            refused.append((key, held, held_scope(provider, status, document, refuses_model)))
        elif 200 <= status <= 299:
            for refused_key, until, scope in refused:
                pool.rest_held(refused_key, until, scope, model, now)
            refused.clear()
        verdict = pool.learn(
            key, mark, provider, answer, status, document, now, model, request.body
        )
        failover = verdict != rate_limit_headers.TOO_LARGE and (
            status in FAILOVER_STATUSES
            or refuses_model
            or server_error_failover(status, answer.headers, now - started)
        )
        if not failover:
            reply = scrubbed(answer, secrets)
            return Response(reply.status, reply.headers, reply.body)
    return final_answer(None if answer is None else scrubbed(answer, secrets), provider)


def pool_exhausted(provider: Provider, until: float, now_ms: int) -> Response:
    """`429 pool_exhausted`: every key rests on a time its provider stated, the soonest `until`."""
    seconds, wait_ms = key_limits.pool_exhausted_wait(until, now_ms)
    return error(
        429,
        key_limits.POOL_EXHAUSTED,
        key_limits.pool_exhausted_message(provider.slug, seconds),
        {"retry-after": str(seconds), rate_limit_headers.RETRY_AFTER_MS_HEADER: str(wait_ms)},
        kind=RATE_LIMIT_ERROR_TYPE,
    )


def key_id(key: str) -> str:
    """A key's public id: the first 8 hex digits of its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]
