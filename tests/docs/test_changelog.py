"""CHANGELOG.md keeps the Keep a Changelog form, and its latest release is `aigw --version`'s."""

from __future__ import annotations

import re
import tomllib
from datetime import date

from tests.docs.sessions import ROOT

CHANGELOG = ROOT / "CHANGELOG.md"
KINDS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
"""Keep a Changelog's kinds of change, the only third-level headings it uses."""
RELEASE = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+)\] - (?P<date>\d{4}-\d{2}-\d{2})$")


def headings(level: str) -> list[str]:
    """The changelog's headings of one level (`## ` or `### `), in order."""
    return [line for line in CHANGELOG.read_text().splitlines() if line.startswith(level)]


def test_changelog_opens_with_unreleased_then_releases_newest_first() -> None:
    """`## [Unreleased]` first, then `## [x.y.z] - YYYY-MM-DD`, versions and dates descending."""
    [title, *sections] = headings("## ")
    assert title == "## [Unreleased]"
    releases = [RELEASE.match(line) for line in sections]
    assert releases and all(releases), sections
    versions = [tuple(int(n) for n in m["version"].split(".")) for m in releases if m]
    dates = [date.fromisoformat(m["date"]) for m in releases if m]
    assert versions == sorted(versions, reverse=True) and dates == sorted(dates, reverse=True)


def test_changes_are_grouped_by_kind() -> None:
    """Every third-level heading is one of Keep a Changelog's kinds."""
    assert {line.removeprefix("### ") for line in headings("### ")} <= KINDS


def test_latest_release_is_the_package_version() -> None:
    """The newest release in the changelog is pyproject.toml's version, which --version prints."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    latest = next(m for line in headings("## ") if (m := RELEASE.match(line)))
    assert latest["version"] == project["version"]
