"""What the Worker is rendered with, and the requests and answers the model passes around.

`worker_template/config.js.j2` renders `WorkerConfig`'s values as the Worker's constants. The
request and answer types have no JavaScript twin: the Worker has `Request` and `Response`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from infra.client_policies import ClientPolicy
from infra.providers import PROVIDERS, Provider
from infra.setting_forms import DEFAULT_CLIENT_GATEWAY_HEADERS
from infra.settings import Settings

UPSTREAM_TIMEOUT_MS = 300_000
"""How long an upstream gets to answer with headers. Long on purpose: a non-streaming completion
sends its headers only when the whole answer is ready, which can take minutes."""


@dataclass(frozen=True)
class WorkerConfig:
    """Everything non-secret the Worker is rendered with."""

    gateway_url: str
    providers: tuple[Provider, ...]
    cors_origins: tuple[str, ...]
    max_attempts: int
    max_body_bytes: int
    cache_ttl: int
    """The gateway's cache TTL in seconds; 0 is caching off."""
    upstream_timeout_ms: int = UPSTREAM_TIMEOUT_MS
    rotation_offset: int | None = None
    """Where every key rotation starts; `None` (always, in production) means a random offset."""
    clients: Mapping[str, ClientPolicy] = field(default_factory=lambda: MappingProxyType({}))
    """Client policies by name, `"*"` for every client without its own (DESIGN §4)."""
    client_gateway_headers: tuple[str, ...] = DEFAULT_CLIENT_GATEWAY_HEADERS
    """The `cf-aig-*` headers a client may send (`clientGatewayHeaders`)."""
    cache_scope: str = "client"
    """`cacheScope`: `client` puts the client's name in the Worker's cache key, `shared` not."""

    @property
    def cache(self) -> bool:
        """Gateway caching is on (`cacheTtl` > 0): the Worker sets a shared cache key."""
        return self.cache_ttl > 0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        gateway_url: str | None = None,
        upstream_timeout_ms: int = UPSTREAM_TIMEOUT_MS,
        rotation_offset: int | None = None,
    ) -> WorkerConfig:
        """The Worker's configuration for `settings`, optionally aimed at another gateway URL."""
        return cls(
            gateway_url=(gateway_url or settings.gateway_url).rstrip("/"),
            providers=tuple(PROVIDERS[slug] for slug in settings.providers),
            cors_origins=settings.cors_origins,
            max_attempts=settings.max_attempts,
            max_body_bytes=settings.max_body_bytes,
            cache_ttl=settings.cache_ttl,
            upstream_timeout_ms=upstream_timeout_ms,
            rotation_offset=rotation_offset,
            clients=settings.clients,
            client_gateway_headers=settings.client_gateway_headers,
            cache_scope=str(settings.scalars["cacheScope"]),
        )

    def provider(self, slug: str) -> Provider | None:
        """The configured provider with path segment `slug`, if any."""
        return next((p for p in self.providers if p.slug == slug), None)


@dataclass(frozen=True)
class ClientRequest:
    """A request as the Worker receives it; `target` is the raw path and query, as sent."""

    method: str
    target: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class UpstreamRequest:
    """One attempt sent to the gateway."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None


@dataclass(frozen=True)
class UpstreamResponse:
    """What the gateway answered (the body is streamed through untouched in the Worker)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


UpstreamFailure = Literal["network-error", "timeout"]
Send = Callable[[UpstreamRequest], UpstreamResponse | UpstreamFailure]


@dataclass(frozen=True)
class Response:
    """What the client gets."""

    status: int
    headers: Mapping[str, str]
    body: bytes
