"""Renders the Worker's ES module source from settings (pure; no secret ever reaches it)."""

from __future__ import annotations

from infra.settings import Settings


def render_worker(settings: Settings, *, gateway_url: str | None = None) -> str:
    """Return the Worker's source for `settings`.

    `gateway_url` replaces the AI Gateway base URL (`aigw dev --upstream`); it defaults to
    `settings.gateway_url`.
    """
    raise NotImplementedError("the Worker template lands with issue 3")
