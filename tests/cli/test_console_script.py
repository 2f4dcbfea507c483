"""The installed `aigw` console script, run as a user would: a real process, real exit status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cloudflare_fake import ACCOUNT_ID, API_TOKEN, GATEWAY_ID, FakeCloudflare


def aigw_script() -> str:
    """The `aigw` entry point installed next to this interpreter (the venv's bin)."""
    beside = Path(sys.executable).parent / "aigw"
    found = str(beside) if beside.exists() else shutil.which("aigw")
    assert found, "the aigw console script is not installed: pip install -e ."
    return found


def test_console_script_prints_usage_json_and_nothing_else(
    cloudflare_api: FakeCloudflare, tmp_path: Path
) -> None:
    """`aigw usage --json` in a subprocess: the JSON on stdout, an empty stderr, exit 0."""
    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    for minute in range(3):
        cloudflare_api.add_log(start + timedelta(minutes=minute), tokens_in=5, cost=0.5)
    env = {
        **os.environ,
        "CLOUDFLARE_BASE_URL": cloudflare_api.api_url,
        "CLOUDFLARE_API_TOKEN": API_TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
    }
    argv = [aigw_script(), "usage", "--json", "--gateway-id", GATEWAY_ID, "--by", "client"]
    argv += ["--source", "logs"]
    argv += ["--since", "2026-11-28T12:00:00Z", "--until", "2026-11-28T12:02:00Z"]
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == {
        "rows": [
            {
                "group": "laptop",
                "requests": 3,
                "errors": 0,
                "cached": 0,
                "tokens_in": 15,
                "tokens_out": 0,
                "cost": 1.5,
            }
        ],
        "total": {
            "group": "total",
            "requests": 3,
            "errors": 0,
            "cached": 0,
            "tokens_in": 15,
            "tokens_out": 0,
            "cost": 1.5,
        },
    }


def test_console_script_exits_non_zero_with_one_line_on_a_wrong_token(
    cloudflare_api: FakeCloudflare, tmp_path: Path
) -> None:
    """A refused token: exit status 1 and one line on stderr, as scripts and CI see it."""
    env = {**os.environ, "CLOUDFLARE_BASE_URL": cloudflare_api.api_url}
    env["CLOUDFLARE_API_TOKEN"] = "wrong-token"
    argv = [aigw_script(), "usage", "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID]
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("aigw: error: the Cloudflare API refused the token")
    assert len(done.stderr.splitlines()) == 1
    assert "wrong-token" not in done.stderr
