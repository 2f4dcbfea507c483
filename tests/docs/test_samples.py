"""The README's and the site's samples of `aigw usage` and `aigw keys` are what the commands print
on the docs' one sample day (tests/docs/sample_gateway.py), so they agree with one another."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from infra.worker.pool import key_id
from tests.docs.sample_gateway import (
    KEYS,
    OUT_OF_QUOTA,
    REVOKED,
    run_sample,
    sample_day,
    sample_project,
    sampled_commands,
)
from tests.docs.sessions import ROOT, matches


def test_every_sample_prints_what_the_page_shows() -> None:
    """Each recorded sample, run on the sample day, prints the lines its page shows."""
    samples = list(sampled_commands())
    pages = {str(page.relative_to(ROOT)) for page, _, _ in samples}
    assert {"README.md", "docs/operate/keys.md", "docs/operate/usage.md"} <= pages
    with sample_project() as (project, env):
        for page, _, command in samples:
            printed = run_sample(command, project, env)
            assert matches(command.shown, printed), (
                f"{Path(page).relative_to(ROOT)}:{command.line}: `{command.text}` printed\n"
                + "\n".join(printed)
                + "\n--- but the page shows ---\n"
                + "\n".join(command.shown)
                + "\n(python -m tests.docs.sample_gateway --write rewrites the samples)"
            )


def test_the_sample_day_has_a_key_to_replace_and_agrees_with_itself() -> None:
    """The day holds what the pages describe: a revoked key refused from its moment on, and as
    many logged attempts per key as `usage --by key` and `keys` both count."""
    day = sample_day()
    revoked = [a for a in day if a.key == REVOKED[0] and a.at >= REVOKED[1]]
    assert revoked and {a.status for a in revoked} == {401}
    per_key = Counter(key_id(a.key) for a in day if a.key)
    assert set(per_key) == {key_id(key) for keys in KEYS.values() for key in keys}
    chart_text = (ROOT / "docs" / "operate" / "keys.md").read_text(encoding="utf-8")
    assert f"when `{key_id(REVOKED[0])}` was revoked ({REVOKED[1]:%H}:00-" in chart_text
    assert f"quota ran out ({OUT_OF_QUOTA[1]:%H:%M})" in chart_text
