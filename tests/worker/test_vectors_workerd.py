"""The rendered Worker in workerd against every conformance case in tests/vectors/."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from infra.cli.workerd import serve_worker
from infra.settings import rate_limit_bindings
from infra.worker.render import render_config
from tests.upstream import FakeGateway
from tests.vectors.conformance import (
    Case,
    Exchange,
    Observed,
    check_attempts,
    check_response,
    load_cases,
)

CASES = load_cases()
CLIENT_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def scripted() -> Iterator[FakeGateway]:
    """One fake gateway for the module that answers only from each exchange's script."""
    with FakeGateway() as gateway:
        gateway.strict_script = True
        yield gateway


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_worker_meets_vector(case: Case, scripted: FakeGateway) -> None:
    """workerd answers every exchange of the case as expected, sends the expected attempts, and
    logs no secret."""
    source = render_config(case.config(scripted.url))
    limits = rate_limit_bindings(case.settings)
    with serve_worker(source, case.bindings, rate_limits=limits) as worker:
        for exchange in case.exchanges:
            scripted.reset()
            scripted.script(*exchange.upstream)
            check_response(case, exchange, _send(worker.url, exchange))
            seen = [Observed(r.method, r.target, r.headers, r.body) for r in scripted.requests]
            check_attempts(case, exchange, seen)
        log = worker.log_path.read_text(encoding="utf-8", errors="replace")
    leaked = [secret for secret in case.secrets() if secret in log]
    assert not leaked, f"workerd logged secrets {leaked}"


def _send(url: str, exchange: Exchange) -> Observed:
    """Send the exchange's request with its target byte for byte (no client-side normalising)."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(
        address.hostname or "127.0.0.1", address.port, timeout=CLIENT_TIMEOUT
    )
    request = exchange.request
    try:
        connection.putrequest(request.method, request.target, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        if exchange.chunked:
            connection.putheader("transfer-encoding", "chunked")
        elif request.body or request.method == "POST":
            connection.putheader("content-length", str(len(request.body)))
        connection.endheaders(request.body or None, encode_chunked=exchange.chunked)
        response = connection.getresponse()
        headers: dict[str, str] = {}
        for name, value in response.getheaders():
            lowered = name.lower()
            headers[lowered] = f"{headers[lowered]}, {value}" if lowered in headers else value
        return Observed(response.status, "", headers, response.read())
    finally:
        connection.close()
