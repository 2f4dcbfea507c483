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
from infra.worker import key_limits
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
from infra.worker.key_limits import KeyState
from infra.worker.policy import policy_of_client
from infra.worker.routing import Route
from infra.worker.scrubbing import error_document, scrubbed
from infra.worker.verdicts import (
    RATE_LIMITED_COOLDOWN_MS,
    error_of,
    gateway_answer,
    gateway_refusal,
    held_rest_until,
    insufficient_quota,
    is_failover,
    key_invalid_400,
    per_model_quota,
    request_model,
    retry_delay_ms,
    stated_delay_ms,
)


@dataclass
class KeyPool:
    """One provider's keys in this isolate: where its rotation is, and what each key has left
    (`key_limits` keeps, reads and weighs that)."""

    keys: tuple[str, ...] = field(repr=False)
    next: int
    source: str = field(default="", repr=False)
    """The binding text the keys came from."""
    states: list[KeyState] = field(init=False, repr=False)
    """Each key's state, in the order of `keys`."""
    indexes: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.states = [KeyState() for _ in self.keys]
        self.indexes = {key: index for index, key in enumerate(self.keys)}

    def state(self, key: str) -> KeyState:
        """What this isolate knows of `key`."""
        return self.states[self.indexes[key]]

    def start(self) -> int:
        """The index this request starts at; the next request starts one further."""
        index = self.next % len(self.keys)
        self.next += 1
        return index

    def pick(
        self, start: int, tried: set[str], now_ms: int, model: str | None = None
    ) -> str | None:
        """The untried key with the most left that is not resting (rotation order from `start`
        among equals), else the one resting on a guess that recovers soonest, else None."""
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
        """Keep `key` out of use until `until_ms` (for `model` only, if given), never shortening
        a longer rest; `stated` when the provider stated the time."""
        key_limits.rest(self.state(key), until_ms, stated, now_ms, model)

    def exhausted_until(self, now_ms: int, model: str | None = None) -> float | None:
        """When every key rests on a time its provider stated, the soonest; else None."""
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
    ) -> bool:
        """Learn what an answer says of `key` (`mark` from `key_limits.sending`): its rate-limit
        headers, and on a 429 its rest. True when the 429 is the request's own fault: it goes
        to the client as it is, with no failover and no rest."""
        state = self.state(key)
        known = state.requests_limit > 0 or state.tokens_limit > 0
        style = key_limits.RATE_LIMIT_STYLES.get(provider.slug)
        read = key_limits.observe(state, style, answer.headers, now_ms, mark)
        if status != 429:
            if status < 400:
                key_limits.answered(state)
            return False
        if key_limits.request_too_large(status, error_of(document)):
            return True
        delay = stated_delay_ms(answer.headers, now_ms, retry_delay_ms(status, document))
        scope = model if per_model_quota(provider, status, document) else None
        if delay is not None:
            key_limits.rest(state, now_ms + delay, True, now_ms, scope)
        elif not read or key_limits.stated_until(state, now_ms, scope) <= now_ms:
            # Nothing stated when the key takes requests again: a guess, still tried as a last
            # resort.
            key_limits.rest(state, now_ms + RATE_LIMITED_COOLDOWN_MS, False, now_ms, scope)
        if known and not insufficient_quota(status, document):
            key_limits.contended(state)
        return False


def proxy(
    config: WorkerConfig,
    env: Mapping[str, str],
    clock_ms: Callable[[], int],
    request: ClientRequest,
    headers: dict[str, str],
    matched: Route,
    client: str,
    pool: KeyPool,
    send: Send,
) -> Response:
    """Try keys in rotation until one gets an answer no other key could better."""
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
    # Google's quotas can be per model: a request to it is known by its model too.
    model = (
        request_model(provider, request.method, matched.rest, request.body)
        if provider.slug in key_limits.MODEL_QUOTA_PROVIDERS
        else None
    )
    start = pool.start()
    tried: set[str] = set()
    # Keys refused (401/402/403) or otherwise condemned for long in this request, with the
    # end of their rest. They rest only once another key answers the same request without
    # such a verdict: when every key gets one, the request (a bogus OpenAI-Organization,
    # say) or the gateway's own auth is at fault, not the keys, and resting them all would
    # let any client retire the whole pool.
    refused: list[tuple[str, int, str | None]] = []
    # The last attempt's answer; None when it did not reach the gateway.
    answer: UpstreamResponse | None = None
    for _ in range(config.max_attempts):
        key = pool.pick(start, tried, clock_ms(), model)
        if key is None:
            # The keys left all rest on times their provider stated: none is sent to, and
            # when every key of the pool does, the client is told when one will take it.
            until = pool.exhausted_until(clock_ms(), model)
            if until is not None and len(tried) < len(pool.keys):
                return pool_exhausted(provider, until, clock_ms())
            break
        tried.add(key)
        mark = key_limits.sending(pool.state(key))
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
        held = held_rest_until(status, document, now)
        if held is not None:
            scope = model if per_model_quota(provider, status, document) else None
            refused.append((key, held, scope))
        else:
            for refused_key, until, scope in refused:
                pool.rest(refused_key, until, model=scope, now_ms=now)
            refused.clear()
        own_fault = pool.learn(key, mark, provider, answer, status, document, now, model)
        if not is_failover(status) or own_fault:
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
        {"retry-after": str(seconds), key_limits.RETRY_AFTER_MS_HEADER: str(wait_ms)},
        kind=RATE_LIMIT_ERROR_TYPE,
    )


def key_id(key: str) -> str:
    """A key's public id: the first 8 hex digits of its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]
