"""What a reader copies from the site works: commands without prompts or output, placeholders a
shell does not take for a redirect, and diagrams drawn by a Mermaid served with the site."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

from tests.docs.sessions import ROOT, code_blocks, doc_pages

SHELL_BLOCKS = {"sh", "bash", "shell", "console", "shell-session"}
SESSION_BLOCKS = {"console", "shell-session"}
QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")
PLACEHOLDER = re.compile(r"<[A-Za-z][^>]*>")
"""`<account id>`: bash reads `<` as a redirect from a file named `account`."""
CODE = re.compile(
    r'<div class="[^"]*highlight[^"]*"><pre><span></span><code>(.*?)</code></pre>', re.S
)
HIDDEN_WHILE_COPYING = re.compile(r'<span class="(?:gp|go)">.*?</span>', re.S)


def shell_lines() -> Iterator[tuple[str, str]]:
    """Every command line of the README's and the site's shell blocks, with where it is."""
    for page in doc_pages():
        for block in code_blocks(page):
            if block.lang not in SHELL_BLOCKS:
                continue
            for offset, line in enumerate(block.body, start=1):
                if block.lang in SESSION_BLOCKS:
                    if not line.startswith("$ "):
                        continue
                    line = line[2:]
                yield f"{page.relative_to(ROOT)}:{block.line + offset}", line


def test_placeholders_are_safe_to_paste() -> None:
    """No `<...>` outside quotes in a command: a pasted line never redirects from a file."""
    unsafe = []
    for where, line in shell_lines():
        code = re.sub(r"(^|\s)#.*$", "", QUOTED.sub("''", line))
        if PLACEHOLDER.search(code):
            unsafe.append(f"{where}: {line}")
    assert not unsafe, "\n".join(unsafe)


def test_the_placeholder_check_finds_a_redirect() -> None:
    """The check above reads what bash reads: a bare `<x>` counts, a quoted or commented one not."""
    for line, unsafe in [
        ("pulumi config set aigw:accountId <your account id>", True),
        ("pulumi config set aigw:accountId 'YOUR_ACCOUNT_ID'", False),
        ("pulumi stack output url   # https://aigw-dev.<you>.workers.dev", False),
    ]:
        code = re.sub(r"(^|\s)#.*$", "", QUOTED.sub("''", line))
        assert bool(PLACEHOLDER.search(code)) is unsafe, line


def copied(block_html: str) -> list[str]:
    """What the copy button puts on the clipboard: the block's text without prompts and output
    (hidden while copying), blank lines left out."""
    text = html.unescape(re.sub(r"<[^>]+>", "", HIDDEN_WHILE_COPYING.sub("", block_html)))
    return [line for line in text.split("\n") if line.strip()]


def test_console_blocks_copy_their_commands_only(site: Path) -> None:
    """The try-it page's console blocks copy exactly the commands they show, continuation lines
    included, and never a `$ ` or a line of output."""
    page = ROOT / "docs" / "try-it.md"
    shown = [block.commands() for block in code_blocks(page) if block.lang in SESSION_BLOCKS]
    built = (site / "try-it" / "index.html").read_text(encoding="utf-8")
    rendered = [copied(code) for code in CODE.findall(built) if 'class="gp"' in code]
    assert len(rendered) == len(shown) >= 3
    for commands, lines in zip(shown, rendered, strict=True):
        assert lines == [line for command in commands for line in command.text.split("\n")]
        assert not any(line.startswith("$ ") for line in lines)


def test_the_stylesheet_hides_prompts_and_output_while_material_copies(site: Path) -> None:
    """Material copies `innerText` while `data-md-copying` is set, and the site's stylesheet,
    linked from every page, hides `.gp` and `.go` then."""
    bundle = next((site / "assets" / "javascripts").glob("bundle.*.min.js")).read_text()
    assert 'setAttribute("data-md-copying","")' in bundle and ".innerText" in bundle
    css = re.sub(
        r"/\*.*?\*/", "", (site / "assets" / "stylesheets" / "copy.css").read_text(), flags=re.S
    )
    rule = re.search(r"([^{}]+)\{\s*display:\s*none;\s*\}", css)
    assert rule is not None
    selectors = {part.strip() for part in rule[1].split(",")}
    assert selectors == {
        ".highlight code[data-md-copying] .gp",
        ".highlight code[data-md-copying] .go",
    }
    assert "assets/stylesheets/copy.css" in (site / "index.html").read_text()


def test_mermaid_is_served_with_the_site_at_the_pinned_version(site: Path) -> None:
    """Pages with a diagram load Mermaid from the site itself, the version package.json pins
    (Material fetches it from a CDN only when no `mermaid` is loaded)."""
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["mermaid"]
    served = site / "assets" / "javascripts" / "mermaid.min.js"
    assert f'version:"{pinned}"' in served.read_text(encoding="utf-8")
    page = (site / "worker" / "index.html").read_text(encoding="utf-8")
    assert 'class="mermaid"' in page
    assert '<script src="../assets/javascripts/mermaid.min.js"></script>' in page
    assert not re.search(r'<script src="https?://', page)
