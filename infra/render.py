"""Renders the Worker's ES module source from settings (pure; no secret ever reaches it)."""

from __future__ import annotations

from infra.settings import Settings

COMPATIBILITY_DATE = "2026-11-01"
"""The Workers compatibility date the Worker is written and tested against (workerd in package.json
supports it); deployed and local runs use the same one."""
MAIN_MODULE = "worker.js"
"""The module name of the rendered source, as uploaded and as served by workerd."""


def render_worker(settings: Settings, *, gateway_url: str | None = None) -> str:
    """Return the Worker's source for `settings`.

    `gateway_url` replaces the AI Gateway base URL (`aigw dev --upstream`); it defaults to
    `settings.gateway_url`.
    """
    raise NotImplementedError("the Worker template lands with issue 3")
