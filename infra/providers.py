"""The table of upstream providers the Worker can route to, and how each one carries its API key."""

from __future__ import annotations

from dataclasses import dataclass


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
