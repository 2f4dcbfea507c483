"""Fixtures of the infra tests: a loopback Cloudflare API for the workers.dev lookup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cloudflare_fake import API_TOKEN, FakeCloudflare, serving


@pytest.fixture(autouse=True)
def cloudflare_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudflare]:
    """A loopback Cloudflare API, with the SDK pointed at it through its own env variables."""
    with serving(FakeCloudflare()) as fake:
        monkeypatch.setenv("CLOUDFLARE_BASE_URL", fake.api_url)
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", API_TOKEN)
        monkeypatch.delenv("PULUMI_CONFIG", raising=False)
        yield fake
