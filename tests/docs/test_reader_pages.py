"""Pages a reader sees say nothing only the team understands, and summaries agree with their own
tables."""

from __future__ import annotations

import re

from tests.docs.sessions import ROOT, doc_pages

ISSUE_NUMBER = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
"""`issue 11` means nothing to a reader; another project's issue, owner/repo#N, is fine."""


def test_no_page_cites_an_issue_number() -> None:
    """The README, the changelog and every page of the site are free of `issue NN`."""
    pages = [*doc_pages(), ROOT / "CHANGELOG.md"]
    cited = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for page in pages
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        if ISSUE_NUMBER.search(line)
    ]
    assert not cited, "\n".join(cited)


def test_benchmark_summary_quotes_its_own_table() -> None:
    """The sentence under the summary table gives the table's one-client figures for aigw and
    the recipe, not figures from another run."""
    text = (ROOT / "docs" / "benchmarks" / "index.md").read_text(encoding="utf-8")
    row = re.search(r"^\| added p50 latency, 1 client \|([^\n]+)$", text, re.MULTILINE)
    assert row is not None
    _, aigw, recipe, _ = (cell.strip() for cell in row[1].strip(" |").split("|"))
    after_table = text[row.end() :].split("\n\n", 2)[1]
    assert f"adds {aigw}" in after_table and f"recipe's {recipe}" in after_table
