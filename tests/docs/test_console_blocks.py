"""Every ```console block in the README and the site prints what the docs say it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.sessions import ROOT, Block, code_blocks, doc_pages, matches, session

PAGES = [page for page in doc_pages() if any(b.lang == "console" for b in code_blocks(page))]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_console_blocks_print_what_the_page_shows(page: Path, tmp_path: Path) -> None:
    """Run the page's console blocks in order, as a reader would, and compare each output."""
    with session(page, tmp_path) as running:
        for block in code_blocks(page):
            if block.title is not None:
                running.write(block)
            if block.lang != "console":
                continue
            commands = block.commands()
            assert commands, f"{page.name}:{block.line}: a console block without a `$ ` command"
            for command in commands:
                printed = running.run(command)
                assert matches(command.shown, printed), (
                    f"{page.name}:{command.line}: `{command.text}` printed\n"
                    + "\n".join(printed)
                    + "\n--- but the page shows ---\n"
                    + "\n".join(command.shown)
                )


def test_the_pages_hold_console_blocks() -> None:
    """The check above has something to check: the try-it page and the CLI reference among them."""
    names = {str(page.relative_to(ROOT)) for page in PAGES}
    assert {"README.md", "docs/try-it.md", "docs/reference/cli.md"} <= names


@pytest.mark.parametrize(
    ("shown", "printed", "same"),
    [
        (["a", "b"], ["a", "b"], True),
        (["a", "b"], ["a", "c"], False),
        (["a"], ["a", "b"], False),
        (["a", "...", "d"], ["a", "b", "c", "d"], True),
        (["a", "...", "d"], ["a", "d"], True),
        (["a", "...", "d"], ["a", "b", "c"], False),
    ],
)
def test_an_ellipsis_line_stands_for_any_lines(
    shown: list[str], printed: list[str], same: bool
) -> None:
    """`...` alone on a line is the only freedom the comparison allows."""
    assert matches(shown, printed) is same


def test_commands_join_continuation_lines() -> None:
    """A command written over several lines with `\\` is one command; what follows is output."""
    block = Block(1, "console", None, ["$ echo a \\", "  b", "a b", "$ true"])
    [first, second] = block.commands()
    assert first.text == "echo a \\\n  b" and first.shown == ["a b"]
    assert second.text == "true" and second.shown == []
