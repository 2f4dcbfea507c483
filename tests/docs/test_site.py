"""The documentation site builds with `mkdocs build --strict`: no broken link, anchor or page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).with_name("mkdocs")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_site_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` succeeds, and every page of the navigation is in the built site."""
    result = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    for page in ("index.html", "try-it/index.html", "reference/settings/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_strict_build_fails_on_a_broken_anchor(tmp_path: Path) -> None:
    """A link to an anchor that no heading makes fails the build, so its passing means something."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing part](other.md#nowhere).\n")
    (docs / "other.md").write_text("# Other\n\n## Somewhere\n")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python/name:", ""))
    config.pop("nav")
    superfences = config["markdown_extensions"]
    config["markdown_extensions"] = [e for e in superfences if "pymdownx.superfences" not in e]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert re.search(r"other\.md#nowhere", result.stderr), result.stderr


def test_every_page_opens_with_what_the_reader_can_do() -> None:
    """Each page starts with its title, then one sentence on what it lets the reader do."""
    for page in sorted((ROOT / "docs").rglob("*.md")):
        lines = page.read_text().splitlines()
        assert lines[0].startswith("# "), page
        opening = " ".join(lines[2:4])
        assert re.match(
            r"This page (lets you|tells you|takes you|shows|sets up|gets|is for)", opening
        ), f"{page.relative_to(ROOT)} opens with {opening[:80]!r}"
