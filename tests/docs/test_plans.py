"""The plans and costs page states the same Cloudflare limits that the code checks against."""

from __future__ import annotations

from pathlib import Path

from infra.resources.gateway import FREE_PLAN_MAX_LOGS
from infra.secret_bindings import WORKER_VARIABLE_LIMITS
from infra.setting_forms import MAX_ATTEMPTS, MAX_SPEND_LIMIT_RULES

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "plans.md").read_text()


def test_the_page_and_the_code_use_the_same_limits() -> None:
    """A limit changed in the code (after a Cloudflare change) shows on the page too."""
    limits = WORKER_VARIABLE_LIMITS
    assert f"{limits.per_worker_free} per Worker, 5 KB each" in PAGE
    assert f"{limits.per_worker_paid} per Worker, 5 KB each" in PAGE
    assert f"{FREE_PLAN_MAX_LOGS:,} logs in all" in PAGE
    assert f"at most {MAX_SPEND_LIMIT_RULES} rules per gateway" in PAGE
    assert f"`maxAttempts` (at most {MAX_ATTEMPTS})" in PAGE


def test_every_figure_has_its_source_and_the_date_read() -> None:
    """Each feature row links to Cloudflare's page, and the page says when it was read."""
    rows = [line for line in PAGE.splitlines() if line.startswith("| ") and "---" not in line]
    features = [row for row in rows[1:] if row.count("|") == 6]
    assert len(features) >= 10
    assert all("https://developers.cloudflare.com/" in row for row in features)
    assert "read on 2026-12-07" in PAGE
