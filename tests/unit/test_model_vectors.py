"""The reference model (infra/worker/) against every conformance case in tests/vectors/."""

from __future__ import annotations

import pytest

from infra.worker.config import UpstreamFailure, UpstreamRequest, UpstreamResponse
from infra.worker.worker import Isolate
from tests.vectors.conformance import Case, Observed, check_attempts, check_response, load_cases

CASES = load_cases()


class ScriptedSend:
    """The model's upstream: answers attempts from a script, in order, and records them."""

    def __init__(self, answers: list[UpstreamResponse | UpstreamFailure]) -> None:
        self.answers = list(answers)
        self.sent: list[UpstreamRequest] = []

    def __call__(self, request: UpstreamRequest) -> UpstreamResponse | UpstreamFailure:
        self.sent.append(request)
        return self.answers.pop(0) if self.answers else UpstreamResponse(599, {}, b"unscripted")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_model_meets_vector(case: Case) -> None:
    """The model answers every exchange of the case as expected and sends the expected attempts."""
    config = case.config()
    isolate = Isolate(config, case.bindings)
    for exchange in case.exchanges:
        send = ScriptedSend(exchange.upstream)
        response = isolate.handle(exchange.request, send)
        seen = Observed(response.status, "", response.headers, response.body)
        check_response(case, exchange, seen)
        attempts = [
            Observed(r.method, r.url.removeprefix(config.gateway_url), r.headers, r.body or b"")
            for r in send.sent
        ]
        check_attempts(case, exchange, attempts)
