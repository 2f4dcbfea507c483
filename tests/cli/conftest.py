"""Fixtures of the CLI tests: a loopback Cloudflare API selected through `CLOUDFLARE_BASE_URL`."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cli import api
from infra.cli.main import main
from tests.cloudflare_fake import API_TOKEN, FakeCloudflare, serving


@pytest.fixture
def cloudflare_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeCloudflare]:
    """A running fake Cloudflare API with one gateway, selected through `CLOUDFLARE_BASE_URL`."""
    fake = FakeCloudflare()
    fake.add_gateway()
    with serving(fake):
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", fake.api_url)
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", API_TOKEN)
        monkeypatch.delenv("CLOUDFLARE_ACCOUNT_ID", raising=False)
        monkeypatch.delenv("PULUMI_STACK", raising=False)
        # The SDK's retries with backoff are its own business; one attempt keeps error paths quick.
        monkeypatch.setattr(api, "API_RETRIES", 0)
        monkeypatch.chdir(tmp_path)  # no stray Pulumi.<stack>.yaml is picked up
        yield fake


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound once by the kernel's choice, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run a command that must fail cleanly; its stderr."""
    assert main(argv) == 1
    captured = capsys.readouterr()
    for stream in (captured.out, captured.err):
        assert "Traceback" not in stream
        assert API_TOKEN not in stream
    assert captured.err.startswith("aigw: error: ")
    assert captured.err.count("\n") == 1, "one sentence, one line"
    return captured.err
