"""One fixed day of a gateway's logs, the stack that sent them, and the docs' samples run on it.

The README's and the operate pages' recorded samples of `aigw usage` and `aigw keys` all come from
running the commands on this one day, so they agree with each other: the same keys, the same
counts. `tests/docs/test_samples.py` runs every such sample and fails on a difference;

    .venv/bin/python -m tests.docs.sample_gateway --write

rewrites them (and docs/keys-chart.png) after a change to the commands or to this day.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infra.resources.key_places import key_places
from infra.worker.pool import key_id
from tests.cloudflare_fake import ACCOUNT_ID, API_TOKEN, FakeCloudflare, serving
from tests.docs.sessions import ROOT, Block, Command, code_blocks, doc_pages, matches

BIN = Path(sys.executable).parent
DAY = datetime(2026, 11, 28, tzinfo=UTC)
SAMPLED = ("aigw usage", "aigw keys")
"""The commands whose samples run on the sample day: those whose window is on that day (others,
such as the troubleshooting page's errors, show what another setup prints)."""
CHART = "docs/keys-chart.png"
KEYS: dict[str, list[str]] = {
    "openai": ["sk-sample-openai-0", "sk-sample-openai-1", "sk-sample-openai-2"],
    "anthropic": ["sk-ant-sample-0", "sk-ant-sample-1"],
    "google-ai-studio": ["AIza-sample-0"],
}
"""The pool of stack `dev`; the logs show only their ids, as the Worker sends them."""
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4",
    "google-ai-studio": "gemini-2.5-flash",
}
PRICES = {"openai": (0.15, 0.60), "anthropic": (3.0, 15.0), "google-ai-studio": (0.30, 2.50)}
"""US dollars per million tokens in and out."""
CLIENTS = ("laptop", "ci", "alice")
REVOKED = (KEYS["openai"][1], DAY + timedelta(hours=14, minutes=20))
"""This key is refused (401) from this moment on: the one `aigw keys` says to replace."""
OUT_OF_QUOTA = (KEYS["google-ai-studio"][0], DAY + timedelta(hours=19))
"""Google's per-day quota runs out here: 429 for the rest of the day."""
STACK_FILE = f"""config:
  aigw:accountId: {ACCOUNT_ID}
  aigw:providerKeys:
""" + "".join(
    f"    {provider}:\n" + "".join("      - secure: v1:sample\n" for _ in keys)
    for provider, keys in KEYS.items()
)


@dataclass(frozen=True)
class Attempt:
    """One logged upstream attempt."""

    at: datetime
    provider: str
    key: str | None
    client: str
    status: int
    cached: bool = False
    tokens_in: int = 0
    tokens_out: int = 0


def sample_day() -> list[Attempt]:
    """The day's attempts, in time order: the same every run (a seeded generator)."""
    rng = random.Random(20261128)
    turn = dict.fromkeys(KEYS, 0)
    attempts: list[Attempt] = []
    for hour in range(24):
        for _ in range(rng.randint(8, 14)):
            at = DAY + timedelta(hours=hour, seconds=rng.randrange(3600))
            provider = rng.choices(list(KEYS), weights=(5, 3, 2))[0]
            client = rng.choices(CLIENTS, weights=(5, 3, 2))[0]
            attempts.extend(_request(rng, at, provider, client, turn))
    # The gateway's own refusals (its rate limit) carry no key: the Worker never chose one.
    for minute in range(5):
        attempts.append(
            Attempt(DAY + timedelta(hours=9, minutes=minute), "openai", None, "ci", 429)
        )
    return sorted(attempts, key=lambda attempt: attempt.at)


def _request(
    rng: random.Random, at: datetime, provider: str, client: str, turn: dict[str, int]
) -> Iterator[Attempt]:
    """One client request: a key in turn, and the next key after a refusal, 429 or 5xx."""
    pool = KEYS[provider]
    for attempt in range(len(pool)):
        key = pool[(turn[provider] + attempt) % len(pool)]
        moment = at + timedelta(milliseconds=300 * attempt)
        status = _status(rng, key, moment)
        if status != 200:
            yield Attempt(moment, provider, key, client, status)
            continue
        tokens_in, tokens_out = rng.randint(200, 2400), rng.randint(40, 700)
        yield Attempt(moment, provider, key, client, 200, rng.random() < 0.1, tokens_in, tokens_out)
        break
    turn[provider] += 1


def _status(rng: random.Random, key: str, at: datetime) -> int:
    """What the provider answers this key at this moment."""
    if (key, at >= REVOKED[1]) == (REVOKED[0], True):
        return 401
    if (key, at >= OUT_OF_QUOTA[1]) == (OUT_OF_QUOTA[0], True):
        return 429
    if key == KEYS["anthropic"][0] and at.hour >= 22:
        return 529  # the provider is overloaded at the end of the day
    roll = rng.random()
    return 429 if roll < 0.05 else 500 if roll < 0.07 else 200


def load(fake: FakeCloudflare) -> None:
    """Log the sample day in the fake Cloudflare API, as the gateway would have."""
    for attempt in sample_day():
        low, high = PRICES[attempt.provider]
        cost = (
            0.0 if attempt.cached else (attempt.tokens_in * low + attempt.tokens_out * high) / 1e6
        )
        fake.add_log(
            attempt.at,
            model=MODELS[attempt.provider],
            provider=attempt.provider,
            success=attempt.status == 200,
            status_code=attempt.status,
            cached=attempt.cached,
            tokens_in=attempt.tokens_in,
            tokens_out=attempt.tokens_out,
            cost=round(cost, 6),
            client=attempt.client,
            key=key_id(attempt.key) if attempt.key else None,
        )


@contextmanager
def sample_project() -> Iterator[tuple[Path, dict[str, str]]]:
    """A project directory with stack `dev`, its deployed state (keyPlaces), and the environment
    that points the `aigw` commands at a fake Cloudflare API holding the sample day."""
    fake = FakeCloudflare()
    fake.add_gateway()
    load(fake)
    with tempfile.TemporaryDirectory() as scratch, serving(fake):
        project = Path(scratch)
        shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
        (project / "Pulumi.dev.yaml").write_text(STACK_FILE, encoding="utf-8")
        (project / "docs").mkdir()
        state = project / "home" / ".pulumi" / "stacks" / "aigw" / "dev.json"
        state.parent.mkdir(parents=True)
        outputs = {"gatewayId": "aigw-dev", "keyPlaces": key_places(KEYS)}
        stack = {
            "type": "pulumi:pulumi:Stack",
            "urn": "urn:pulumi:dev::aigw::pulumi:pulumi:Stack::aigw-dev",
        }
        deployment = {"resources": [{**stack, "outputs": outputs}]}
        state.write_text(json.dumps({"version": 3, "checkpoint": {"latest": deployment}}))
        kept = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("CLOUDFLARE_", "PULUMI_", "AIGW_"))
        }
        env = {
            **kept,
            "PATH": f"{BIN}{os.pathsep}{kept.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(project / "home"),
            "CLOUDFLARE_API_TOKEN": API_TOKEN,
            "CLOUDFLARE_BASE_URL": fake.api_url,
            "NO_COLOR": "1",
        }
        yield project, env


def run_sample(command: Command, project: Path, env: dict[str, str]) -> list[str]:
    """What the command prints, piped (as a recorded sample shows it)."""
    done = subprocess.run(
        ["bash", "-c", command.text],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Rich pads a table's lines to its width; a page shows them without the trailing blanks.
    output = (done.stdout + done.stderr).rstrip("\n")
    return [line.rstrip() for line in output.split("\n")] if output else []


def sampled_commands() -> Iterator[tuple[Path, Block, Command]]:
    """Every recorded `aigw usage` / `aigw keys` sample of the README and the site."""
    for page in doc_pages():
        for block in code_blocks(page):
            if block.lang != "shell-session":
                continue
            for command in block.commands():
                if command.text.startswith(SAMPLED) and f"--since {DAY:%Y-%m-%d}" in command.text:
                    yield page, block, command


def write() -> None:
    """Rewrite every sample (and the chart) with what the commands print on the sample day."""
    with sample_project() as (project, env):
        edits: dict[Path, list[tuple[int, int, list[str]]]] = {}
        for page, _, command in sampled_commands():
            printed = run_sample(command, project, env)
            first = command.line + command.text.count("\n")  # the line after the command
            if not matches(command.shown, printed):
                edits.setdefault(page, []).append((first, len(command.shown), printed))
        for page, changes in edits.items():
            lines = page.read_text(encoding="utf-8").split("\n")
            for first, count, printed in sorted(changes, reverse=True):
                lines[first : first + count] = printed
            page.write_text("\n".join(lines), encoding="utf-8")
            print(f"rewrote {len(changes)} sample(s) in {page.relative_to(ROOT)}")
        chart = project / CHART
        if chart.is_file():
            shutil.copy(chart, ROOT / CHART)
            print(f"wrote {CHART}")


def main() -> None:
    """`python -m tests.docs.sample_gateway --write`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the pages' samples")
    if parser.parse_args().write:
        write()
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
