"""Runs the docs' ```console blocks as a reader would paste them, and compares what they print.

A page's console blocks form one session in a scratch directory holding copies of Pulumi.yaml and
Pulumi.example.yaml (as a fresh clone's root does), with no Cloudflare or Pulumi variables set.
Before a block runs, every earlier code block with a `title="<file>"` is written to that file. A
`$ aigw dev ...` whose shown output ends with the ready banner keeps running in the background
for the rest of the page, on a free port that stands in for the 8787 the docs show. A line `...`
in a shown output stands for any number of lines. Blocks marked `shell-session` are recorded
samples (they need a Cloudflare account) and are not run.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from infra.cli.reference import HELP_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SHOWN_PORT = "8787"
READY_LINE = "Press Ctrl-C to stop."
ELLIPSIS = "..."
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)$")
_TITLE = re.compile(r'title="([^"]+)"')
_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Command:
    """One `$ ` command of a console block and the output the docs show under it."""

    line: int
    text: str
    shown: list[str]


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, its `title` if any, and its lines."""

    line: int
    lang: str
    title: str | None
    body: list[str]

    def commands(self) -> list[Command]:
        """The block's commands, continuation lines (`\\` at the end) joined."""
        commands: list[Command] = []
        lines = iter(enumerate(self.body, start=self.line + 1))
        current: tuple[int, list[str], list[str]] | None = None
        for number, text in lines:
            if text.startswith("$ "):
                if current is not None:
                    commands.append(Command(current[0], "\n".join(current[1]), current[2]))
                parts = [text[2:]]
                while parts[-1].endswith("\\"):
                    parts.append(next(lines)[1])
                current = (number, parts, [])
            elif current is not None:
                current[2].append(text)
        if current is not None:
            commands.append(Command(current[0], "\n".join(current[1]), current[2]))
        return commands


def code_blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown file, in order (a bare fence has the language "")."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        match = _FENCE.match(lines[number])
        if match:
            indent, start = len(match["indent"]), number
            body: list[str] = []
            number += 1
            while number < len(lines) and lines[number].strip() != "```":
                body.append(lines[number][indent:])
                number += 1
            title = _TITLE.search(match["attrs"])
            blocks.append(Block(start + 1, match["lang"], title[1] if title else None, body))
        number += 1
    return blocks


def matches(shown: list[str], printed: list[str]) -> bool:
    """Whether `printed` is `shown`, where a shown `...` line stands for any lines."""
    if not shown:
        return not printed
    if shown[0] == ELLIPSIS:
        return any(matches(shown[1:], printed[skip:]) for skip in range(len(printed) + 1))
    return bool(printed) and shown[0] == printed[0] and matches(shown[1:], printed[1:])


@dataclass
class Session:
    """One page's commands, run in order in one scratch directory."""

    page: Path
    cwd: Path
    port: str | None = None
    background: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        kept = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("CLOUDFLARE_", "PULUMI_", "AIGW_"))
            and not name.endswith("_API_KEYS")
            and name not in ("CLIENT_TOKENS", "GATEWAY_TOKEN")
        }
        path = f"{BIN}{os.pathsep}{kept.get('PATH', '/usr/bin:/bin')}"
        return {
            **kept,
            "PATH": path,
            "HOME": str(self.cwd),
            "COLUMNS": str(HELP_COLUMNS),
            "NO_COLOR": "1",
            "TERM": "dumb",
        }

    def localize(self, text: str) -> str:
        """The docs' text as run here: the venv's commands, the served port."""
        text = text.replace(".venv/bin/", f"{BIN}/")
        return text.replace(SHOWN_PORT, self.port) if self.port else text

    def write(self, block: Block) -> None:
        assert block.title is not None
        (self.cwd / block.title).write_text(self.localize("\n".join(block.body) + "\n"))

    def run(self, command: Command) -> list[str]:
        """Run one command; return what it printed, in the docs' terms (the shown port)."""
        if command.shown and command.shown[-1] == READY_LINE and " dev" in command.text:
            return self._start_dev(command)
        # On a terminal, as a reader runs it: curl, for one, prints a progress meter otherwise.
        controller, terminal = pty.openpty()
        with subprocess.Popen(
            ["bash", "-c", self.localize(command.text)],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
        ) as process:
            os.close(terminal)
            output = b""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                ready, _, _ = select.select([controller], [], [], 1)
                try:
                    data = os.read(controller, 65536) if ready else b""
                except OSError:  # the terminal is gone: the command and its children ended
                    break
                if ready and not data:
                    break
                output += data
            process.wait(timeout=10)
        os.close(controller)
        # What a reader sees of it: no colour or bold escapes, no carriage returns.
        return self._shown_lines(_ESCAPES.sub("", output.decode()).replace("\r", ""))

    def _shown_lines(self, output: str) -> list[str]:
        if self.port:
            output = output.replace(f"127.0.0.1:{self.port}", f"127.0.0.1:{SHOWN_PORT}")
        return output.rstrip("\n").split("\n") if output.strip() else []

    def _start_dev(self, command: Command) -> list[str]:
        assert self.port is None, "one aigw dev per page"
        process = subprocess.Popen(
            ["bash", "-c", f"exec {self.localize(command.text)} --port 0"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.background.append(process)
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith(READY_LINE):
                break
        ready = re.search(r"serving the Worker at http://127\.0\.0\.1:(\d+)", "\n".join(lines))
        if ready is None:
            process.kill()
            _, stderr = process.communicate(timeout=10)
            raise AssertionError(f"aigw dev did not start: {lines} {stderr}")
        self.port = ready[1]
        return self._shown_lines("\n".join(lines))

    def stop(self) -> str:
        """Stop what runs in the background; return its stderr (the Worker's log lines)."""
        logs = ""
        for process in self.background:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
            logs += stderr
        return logs


@contextmanager
def session(page: Path, scratch: Path) -> Iterator[Session]:
    """A session for `page` in the empty directory `scratch`; stops what it started."""
    for name in ("Pulumi.yaml", "Pulumi.example.yaml"):
        shutil.copy(ROOT / name, scratch / name)
    running = Session(page, scratch)
    try:
        yield running
    finally:
        running.stop()


def doc_pages() -> list[Path]:
    """The README and every page of the site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
