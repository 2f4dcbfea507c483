"""The built site in a real browser with no network: diagrams draw, copy buttons copy commands.

Needs Chromium (Debian: `apt-get install chromium`); skipped without it, saying so. Every host
name but 127.0.0.1 resolves to nothing, so a CDN cannot stand in for what the site serves.
"""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.docs.sessions import ROOT, code_blocks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH (apt-get install chromium) to open the site in"
)
COPY_PROBE = """<script>
// Test probe, not part of the site: what Material's copy button takes from each console block.
window.addEventListener("load", () => setTimeout(() => {
  const copied = [];
  for (const code of document.querySelectorAll(".highlight code")) {
    if (!code.querySelector(".gp")) continue;
    code.setAttribute("data-md-copying", "");
    copied.push(code.innerText.trimEnd());
    code.removeAttribute("data-md-copying");
  }
  const out = document.createElement("pre");
  out.id = "copied";
  out.textContent = JSON.stringify(copied);
  document.body.appendChild(out);
}, 500));
</script>"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log in the test output."""


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[tuple[Path, str]]:
    """The built site, served on loopback; yields its folder and its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def rendered(url: str) -> str:
    """The page's DOM once its scripts have run, in headless Chromium with no network."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_a_diagram_draws_without_a_network(served: tuple[Path, str]) -> None:
    """Material swaps a diagram's source for a drawn `div.mermaid` only once Mermaid rendered
    it; without the site's copy of Mermaid the source stays, as text."""
    folder, url = served
    assert '<div class="mermaid"></div>' in rendered(f"{url}/worker/")
    served = folder / "assets" / "javascripts" / "mermaid.min.js"
    served.rename(served.with_suffix(".off"))
    try:
        without = rendered(f"{url}/worker/")
    finally:
        served.with_suffix(".off").rename(served)
    assert '<div class="mermaid"></div>' not in without and "sequenceDiagram" in without


def test_copy_buttons_copy_the_commands_only(served: tuple[Path, str]) -> None:
    """In the browser, each console block of the try-it page copies exactly its commands."""
    folder, url = served
    page = folder / "try-it" / "index.html"
    original = page.read_text(encoding="utf-8")
    page.write_text(original + COPY_PROBE, encoding="utf-8")
    try:
        dom = rendered(f"{url}/try-it/")
    finally:
        page.write_text(original, encoding="utf-8")
    probe = re.search(r'<pre id="copied">(.*?)</pre>', dom, re.S)
    assert probe is not None
    shown = [
        "\n".join(command.text for command in block.commands())
        for block in code_blocks(ROOT / "docs" / "try-it.md")
        if block.lang == "console"
    ]
    assert json.loads(html.unescape(probe[1])) == shown
