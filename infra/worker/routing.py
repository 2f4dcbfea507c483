"""Routing: a raw request target to a provider route, refused when it could leave the provider.

`worker_template/routing.js.j2` is its twin, function for function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.providers import Provider
from infra.worker.answers import error
from infra.worker.config import Response, WorkerConfig

PROXIED_METHODS = ("GET", "POST", "DELETE")
ALLOW = "GET, POST, DELETE, OPTIONS"
"""The `Allow` header of a 405, and the methods a preflight allows."""


@dataclass(frozen=True)
class Route:
    """A request mapped onto a provider: the path below the gateway, and the kept query string."""

    provider: Provider
    rest: str
    query: str

    def upstream_path(self) -> str:
        """`/<slug><rest>[?query]`, appended to the gateway URL."""
        return f"/{self.provider.slug}{self.rest}" + (f"?{self.query}" if self.query else "")


STRIPPED_QUERY_PARAMETERS = (
    "$.xgafv",
    "$apiformat",
    "$callback",
    "$ct",
    "$fields",
    "$httpmethod",
    "$key",
    "$quotauser",
    "$userip",
    "$userproject",
    "access_token",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "quotauser",
    "userip",
    "userproject",
)
"""Query parameters (decoded, in any letter case) never forwarded: Google's system parameters
(cloud.google.com/apis/docs/system-parameters) that do what a stripped header does or a client
token's place (`key`): the billing or quota project and user, a method or content-type override
(`$httpMethod`, `$ct`: the body checked would not be the body read), and the forms that change the
error body the Worker reads (`$.xgafv`, a JSONP `callback`, a `fields` mask)."""
ALT_PARAMETERS = ("alt", "$alt")
KEPT_ALT_VALUES = ("sse", "json")
"""`alt` is kept for `sse` (streaming) and `json` (the default), dropped for `proto` and `media`,
whose binary bodies the Worker cannot read."""
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c)", re.IGNORECASE)
_PERCENT = re.compile(r"%([0-9a-fA-F]{2})")
_DECODE_ROUNDS = 3


def split_target(target: str) -> tuple[str, str]:
    """The raw path and the raw query (without `?`) of a request target."""
    path, _, query = target.partition("?")
    return path, query


def route(config: WorkerConfig, path: str, query: str) -> Route | None:
    """The provider route of a raw path: `/v1/…` is OpenAI without `/v1`, `/<slug>/…` is as is."""
    first, slash, rest = path[1:].partition("/")
    provider = config.provider("openai" if first == "v1" else first)
    if provider is None or not path.startswith("/"):
        return None
    return Route(provider, slash + rest, query)


def percent_decode(text: str) -> str:
    """Decode `%XX` escapes byte by byte (each to one character); anything else is kept."""
    return _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text)


def path_is_contained(rest: str) -> bool:
    """Whether a route's remainder stays below `<gateway>/<slug>/`, however often it is decoded.

    Refused: dot segments, backslashes and encoded slashes or backslashes, at any decoding depth.
    """
    text = rest
    for _ in range(_DECODE_ROUNDS + 1):
        if "\\" in text or _ENCODED_SEPARATOR.search(text):
            return False
        if any(segment in (".", "..") for segment in text.split("/")):
            return False
        decoded = percent_decode(text)
        if decoded == text:
            return True
        text = decoded
    return False


def decoded_path(rest: str) -> str:
    """A route's remainder percent-decoded as often as the gateway and the provider might (the
    path is contained, so this ends)."""
    text = rest
    for _ in range(_DECODE_ROUNDS + 1):
        decoded = percent_decode(text)
        if decoded == text:
            break
        text = decoded
    return text


def query_keys(query: str) -> list[str]:
    """The decoded values of the `key` query parameters."""
    values = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if percent_decode(name) == "key":
            values.append(percent_decode(value))
    return values


def forwarded_query(query: str) -> str:
    """The query string without the parameters that are stripped headers in another form
    (`STRIPPED_QUERY_PARAMETERS`, `alt` but `sse` and `json`), others untouched."""
    parts = query.split("&")
    kept = [part for part in parts if not _stripped_parameter(part)]
    # A query with nothing stripped goes upstream byte for byte.
    return query if len(kept) == len(parts) else "&".join(part for part in kept if part)


def _stripped_parameter(part: str) -> bool:
    name, _, value = part.partition("=")
    decoded = percent_decode(name).lower()
    if decoded in ALT_PARAMETERS:
        return percent_decode(value).lower() not in KEPT_ALT_VALUES
    return decoded in STRIPPED_QUERY_PARAMETERS


def health() -> Response:
    """`GET /healthz`: alive, and nothing about keys or clients."""
    return Response(200, {"content-type": "application/json"}, b'{"status":"ok"}')


def method_not_allowed(method: str) -> Response:
    """405, naming the methods that are proxied."""
    return error(
        405,
        "method_not_allowed",
        f"method {method} is not allowed: use GET, POST or DELETE",
        {"allow": ALLOW},
    )
