"""Fixtures of the infra tests: a loopback Cloudflare API for the workers.dev lookup."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from pulumi_harness import CloudflareApi


@pytest.fixture(autouse=True)
def cloudflare_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[CloudflareApi]]:
    """A loopback Cloudflare API, with the SDK pointed at it through its own env variables."""
    CloudflareApi.subdomain_status = 200
    CloudflareApi.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CloudflareApi)
    # A short poll keeps shutdown (once per test) quick.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-api-token-for-tests")
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    try:
        yield CloudflareApi
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
