"""Authentication: the client tokens a request presents, compared in constant time with
`CLIENT_TOKENS`.

`worker_template/auth.js.j2` is its twin, function for function.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence

from infra.providers import BINDING_SEPARATORS, CLIENT_TOKENS, Provider
from infra.worker.routing import query_keys

_BEARER = re.compile(r"bearer +([^ \t]+)", re.IGNORECASE)


def split_list(value: str | None) -> tuple[str, ...]:
    """A secret binding's entries: separated by commas, white space or new lines (DESIGN §3)."""
    entries = [entry for entry in BINDING_SEPARATORS.split(value or "") if entry]
    return tuple(dict.fromkeys(entries))


def parse_client_tokens(value: str | None) -> list[tuple[str, str]]:
    """`CLIENT_TOKENS` as (name, token) pairs; a name appears once per token (a client rotating
    holds two), and an entry without both a name and a token is ignored."""
    tokens: list[tuple[str, str]] = []
    for entry in split_list(value):
        name, colon, token = entry.partition(":")
        if name and colon and token:
            tokens.append((name, token))
    return tokens


def client_tokens(binding_text: Callable[[str], str]) -> list[tuple[str, str]]:
    """`CLIENT_TOKENS` (read through `binding_text`) as (name, token) pairs."""
    return parse_client_tokens(binding_text(CLIENT_TOKENS))


def client_candidates(provider: Provider, headers: Mapping[str, str], query: str) -> list[str]:
    """Every token the client presented, in order: bearer, the provider's header, `?key=`.

    One candidate per place at most: a query of thousands of `key=` values must not buy an
    unauthenticated client thousands of hashes.
    """
    candidates = []
    bearer = _BEARER.fullmatch(headers.get("authorization", ""))
    if bearer:
        candidates.append(bearer.group(1))
    candidates += [headers[h] for h in provider.client_key_headers if headers.get(h)]
    if provider.client_key_query:
        candidates += [value for value in query_keys(query) if value][:1]
    return candidates


def authenticate(candidates: list[str], tokens: Sequence[tuple[str, str]]) -> str | None:
    """The name of the client whose token is among `candidates`, compared in constant time."""
    digests = [(name, hashlib.sha256(token.encode()).digest()) for name, token in tokens]
    for candidate in candidates:
        presented = hashlib.sha256(candidate.encode()).digest()
        match = None
        # Every token is compared, so the time taken does not say which one (or how much) matched.
        for name, digest in digests:
            if hmac.compare_digest(presented, digest) and match is None:
                match = name
        if match is not None:
            return match
    return None
