"""The upstream providers the Worker can route to, and the secret bindings it reads (DESIGN §3)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from infra.secret_bindings import packed_bindings


@dataclass(frozen=True)
class Provider:
    """One AI Gateway provider endpoint: `<gateway>/<slug>/…`."""

    slug: str
    """The provider's path segment on the AI Gateway, and on the Worker."""
    key_header: str
    """The header the provider reads its API key from (lower case)."""
    key_prefix: str
    """What goes before the key in `key_header` (`"Bearer "` or nothing)."""
    client_key_headers: tuple[str, ...]
    """Headers a client SDK of this provider may put its key in, besides `authorization`."""
    client_key_query: str | None = None
    """A query parameter the client SDK may put its key in (Google's `?key=`)."""

    @property
    def binding(self) -> str:
        """The Worker's secret binding holding this provider's key pool."""
        return self.slug.upper().replace("-", "_") + "_API_KEYS"


def _bearer(slug: str) -> Provider:
    return Provider(slug, "authorization", "Bearer ", ())


PROVIDERS: dict[str, Provider] = {
    provider.slug: provider
    for provider in (
        _bearer("openai"),
        Provider("anthropic", "x-api-key", "", ("x-api-key",)),
        Provider(
            "google-ai-studio",
            "x-goog-api-key",
            "",
            ("x-goog-api-key",),
            client_key_query="key",
        ),
        _bearer("groq"),
        _bearer("deepseek"),
        _bearer("mistral"),
        _bearer("openrouter"),
        _bearer("xai"),
        _bearer("workers-ai"),
        _bearer("cerebras"),
        _bearer("perplexity-ai"),
    )
}
"""Every provider slug aigw knows, keyed by slug."""

CLIENT_TOKENS = "CLIENT_TOKENS"
GATEWAY_TOKEN = "GATEWAY_TOKEN"

BINDING_NAMES = (
    *(provider.binding for provider in PROVIDERS.values()),
    CLIENT_TOKENS,
    GATEWAY_TOKEN,
)
"""Every secret binding the Worker reads (DESIGN §3)."""
PACKED_BINDING_NAMES = (*(provider.binding for provider in PROVIDERS.values()), CLIENT_TOKENS)
"""The bindings whose entries continue in numbered ones (`NAME_2`, …) past one variable's size."""
BINDING_SEPARATORS = re.compile(r"[\s,]+")
"""What separates the entries of a secret binding (DESIGN §3): a key or token holding one splits."""


def secret_values(
    provider_keys: Mapping[str, Sequence[str]],
    client_tokens: Mapping[str, str | Sequence[str]] | None,
    gateway_token: str | None,
) -> dict[str, str]:
    """The Worker's secret bindings as {name: text} (DESIGN §3), one key or `name:token` a line.

    A provider's keys and the client tokens each fill as few variables as Cloudflare's size limit
    allows (`OPENAI_API_KEYS`, then `OPENAI_API_KEYS_2`, …; see `infra.secret_bindings`). A client
    with several tokens (while it rotates) has one `name:token` line per token. `CLIENT_TOKENS`
    and `GATEWAY_TOKEN` are left out when their value is None.
    """
    values: dict[str, str] = {}
    for slug, keys in provider_keys.items():
        values.update(packed_bindings(PROVIDERS[slug].binding, keys))
    if client_tokens is not None:
        entries = [
            f"{name}:{token}"
            for name, tokens in client_tokens.items()
            # A lone string is one token, not a sequence of one-letter tokens.
            for token in ((tokens,) if isinstance(tokens, str) else tokens)
        ]
        values.update(packed_bindings(CLIENT_TOKENS, entries))
    if gateway_token is not None:
        values[GATEWAY_TOKEN] = gateway_token
    return values
