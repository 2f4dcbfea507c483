"""`aigw usage`, `keys` and `clients` from the Worker's events: the real Worker in workerd serves
requests, its data points fill the loopback SQL API's dataset (run in chDB), and each report must
equal what the Worker and the gateway did, in a fixed, small number of API calls."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.cli import api, events
from infra.cli.local_analytics import LocalAnalytics, collecting
from infra.cli.main import main
from infra.cli.usage import parse_window
from infra.cli.workerd import serve_worker
from infra.settings import load
from infra.worker.config import UpstreamResponse
from infra.worker.render import render_worker
from tests.analytics_stand_in import AnalyticsEngine, SqlRefused, graphql_answer
from tests.cloudflare_fake import (
    ACCOUNT_ID,
    API_TOKEN,
    GATEWAY_ID,
    GATEWAY_TOKEN,
    FakeCloudflare,
    key_id,
    serving,
)
from tests.upstream import FakeGateway, _openai_completion

DATASET = "aigw_dev"
TARGET = ["--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID, "--dataset", DATASET]
KEYS = ("sk-test-a", "sk-test-b", "sk-test-c")
TOKENS = {"laptop": "tok-test-laptop-0001", "ci": "tok-test-ci-00000002"}
HOSTILE_MODEL = "x') OR 1=1; DROP TABLE aigw_dev; -- \" } query { viewer"
"""A model name a client may send: data in a data point, never part of a query."""
SENT = {"laptop": 3, "ci": 2}
"""Answered chat requests per client."""


@dataclass
class Recorded:
    """The loopback API after the real Worker served the module's traffic."""

    fake: FakeCloudflare
    keys_answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    """(key id, status) of every upstream answer in the failover run, as the gateway sent them."""


def _settings(gateway_url: str) -> tuple[str, dict[str, str]]:
    raw = {
        "accountId": ACCOUNT_ID,
        "gatewayId": GATEWAY_ID,
        "providerKeys": {"openai": list(KEYS)},
        "clientTokens": TOKENS,
        "gatewayToken": GATEWAY_TOKEN,
        "clients": {"ci": {"models": ["gpt-4o-mini", "x')*"]}},
    }
    settings, _ = load(raw, "dev")
    bindings = {
        "OPENAI_API_KEYS": ",".join(KEYS),
        "CLIENT_TOKENS": ",".join(f"{name}:{token}" for name, token in TOKENS.items()),
        "GATEWAY_TOKEN": GATEWAY_TOKEN,
    }
    return render_worker(settings, gateway_url=gateway_url), bindings


def _chat(url: str, client: str, model: str) -> int:
    answer = httpx.post(
        f"{url}/v1/chat/completions",
        headers={"authorization": f"Bearer {TOKENS[client]}"},
        json={"model": model, "messages": [{"role": "user", "content": "a secret question"}]},
        timeout=30,
    )
    return answer.status_code


def _refusal(status: int) -> UpstreamResponse:
    body = json.dumps({"error": {"message": "no", "type": "x", "code": "y"}}).encode()
    return UpstreamResponse(status, {"content-type": "application/json"}, body)


def _wait_for(sink: LocalAnalytics, count: int) -> None:
    """Until the collector has `count` points (and then exactly that many)."""
    deadline = time.monotonic() + 5
    while len(sink.snapshot()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sink.snapshot()) == count


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    """The Worker's traffic: answered requests through the fake gateway (which logs cost and
    tokens), the Worker's own refusals, and a failover run against a scripted gateway."""
    fake = FakeCloudflare()
    fake.add_gateway()
    result = Recorded(fake)
    with serving(fake), collecting(DATASET) as sink:
        source, bindings = _settings(fake.gateway_url)
        with serve_worker(source, bindings, analytics=sink) as worker:
            for client, count in SENT.items():
                for number in range(count):
                    model = HOSTILE_MODEL if client == "ci" and number == 0 else "gpt-4o-mini"
                    assert _chat(worker.url, client, model) == 200
            assert _chat(worker.url, "ci", "o3-pro") == 403  # model_not_allowed
            unauthenticated = httpx.post(
                f"{worker.url}/v1/chat/completions",
                headers={"authorization": "Bearer tok-test-nobody-00000"},
                json={"model": "gpt-4o-mini"},
            )
            assert unauthenticated.status_code == 401
            # workerd posts a point after the answer: stopping it sooner would lose the last.
            _wait_for(sink, sum(SENT.values()) + 2)
        with FakeGateway() as gateway:
            source, bindings = _settings(gateway.url)
            with serve_worker(source, bindings, analytics=sink) as worker:
                completion = UpstreamResponse(
                    200,
                    {"content-type": "application/json"},
                    json.dumps(_openai_completion("gpt-4o-mini")).encode(),
                )
                gateway.script(_refusal(429), _refusal(401), completion, _refusal(500), completion)
                assert _chat(worker.url, "laptop", "gpt-4o-mini") == 200
                assert _chat(worker.url, "laptop", "gpt-4o-mini") == 200
                _wait_for(sink, sum(SENT.values()) + 2 + 5)
                statuses = [429, 401, 200, 500, 200]
                for request, status in zip(gateway.requests, statuses, strict=True):
                    result.keys_answers[key_id(request.key or ""), status] += 1
        fake.analytics.insert(DATASET, sink.snapshot())
        yield result


@pytest.fixture
def api_env(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FakeCloudflare]:
    """The recorded loopback API, selected through `CLOUDFLARE_BASE_URL`; call logs cleared."""
    fake = recorded.fake
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", fake.api_url)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", API_TOKEN)
    monkeypatch.delenv("PULUMI_STACK", raising=False)
    monkeypatch.setattr(api, "API_RETRIES", 0)
    monkeypatch.chdir(tmp_path)
    with fake.lock:
        fake.calls.clear()
        fake.sql.clear()
        fake.graphql.clear()
    yield fake


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json", *TARGET]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_usage_by_client_equals_what_the_worker_and_gateway_did(
    api_env: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Requests and outcomes are the Worker's own (its refusals included), tokens and cost the
    gateway's, in one SQL query and one GraphQL query."""
    document = _json(capsys, "usage", "--by", "client")
    rows = {row["group"]: row for row in document["rows"]}
    assert rows["laptop"]["requests"] == SENT["laptop"] + 2
    assert rows["laptop"]["outcomes"] == {"answered": SENT["laptop"] + 2}
    assert rows["ci"]["outcomes"] == {"answered": SENT["ci"], "model_not_allowed": 1}
    assert (rows["ci"]["refused"], rows["(unknown)"]["outcomes"]) == (1, {"unauthenticated": 1})
    logs = api_env.logs[GATEWAY_ID]
    assert document["total"]["tokens_in"] == sum(log["tokens_in"] for log in logs) > 0
    assert rows["laptop"]["cost"] == round(SENT["laptop"] * 0.000002, 6)
    assert (len(api_env.sql), len(api_env.graphql)) == (1, 1)
    assert api_env.list_calls() == []


def test_hostile_model_names_are_data_never_query_text(
    api_env: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model name made of SQL and GraphQL comes back as a group, and no query holds it."""
    rows = {row["group"]: row for row in _json(capsys, "usage", "--by", "model")["rows"]}
    assert rows[HOSTILE_MODEL]["requests"] == 1
    assert rows[HOSTILE_MODEL]["tokens_in"] == 9
    sent = [*api_env.sql, *(json.dumps(document) for document in api_env.graphql)]
    assert sent and not [text for text in sent if "DROP" in text or "1=1" in text]


def test_keys_judge_every_attempt(
    recorded: Recorded, api_env: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each key's answers are every answer the gateway gave it, failed-over attempts included,
    in one SQL query."""
    keys = {key["keyId"]: key for key in _json(capsys, "keys")["keys"]}
    kinds = {200: "ok", 429: "rateLimited", 401: "refused", 500: "serverErrors"}
    expected: Counter[tuple[str, str]] = Counter()
    for (key, status), count in recorded.keys_answers.items():
        expected[key, kinds[status]] += count
    for log in recorded.fake.logs[GATEWAY_ID]:
        expected[json.loads(log["metadata"])["keyId"], "ok"] += 1
    reported = Counter(
        {
            (key, kind): row[kind]
            for key, row in keys.items()
            for kind in kinds.values()
            if row[kind]
        }
    )
    assert reported == expected
    refused_key = next(key for (key, status) in recorded.keys_answers if status == 401)
    assert keys[refused_key]["refused"] == 1
    assert len(api_env.sql) == 1


def test_clients_show_refusals_and_cost(
    api_env: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each client's requests and the Worker's refusals from the events, its cost from the
    gateway's analytics, in one SQL and one GraphQL query."""
    rows = {row["name"]: row for row in _json(capsys, "clients")["clients"]}
    assert (rows["ci"]["requests"], rows["ci"]["refused"]) == (SENT["ci"] + 1, 1)
    assert rows["laptop"]["cost"] == round(SENT["laptop"] * 0.000002, 6)
    assert (len(api_env.sql), len(api_env.graphql)) == (1, 1)


def test_counts_are_weighted_by_the_sample_interval() -> None:
    """A sampled row stands for `_sample_interval` points: the report's counts say so."""
    engine = AnalyticsEngine()
    row = {"timestamp": "2026-12-01 10:00:00", "_sample_interval": 25, "index1": "openai/ab"}
    row |= {"blob1": "aigw.v1", "blob2": "request", "blob3": "laptop", "blob7": "answered"}
    engine.insert("sampled", [row, row | {"_sample_interval": 1}])
    window = parse_window("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z", now=datetime.now(UTC))
    sql = events.usage_query("sampled", window.start, window.end, "client")
    answer = json.loads(engine.query(sql))
    assert [(r["grp"], float(r["requests"])) for r in answer["data"]] == [("laptop", 26.0)]


def test_the_stand_ins_refuse_what_the_apis_would() -> None:
    """The SQL API reads only; the GraphQL stand-in answers only the fields aigw writes down."""
    engine = AnalyticsEngine()
    engine.insert("ds", [])
    for statement in ("DROP TABLE ds", "SELECT 1 FROM ds; DROP TABLE ds", "SELECT 1 FROM other"):
        with pytest.raises(SqlRefused):
            engine.query(statement)
    query = "query { viewer { accounts { aiGatewayRequestsAdaptiveGroups { sum { bytes } } } } }"
    answer = graphql_answer({"query": query}, [])
    assert answer["errors"] == [{"message": "unknown field sum.bytes"}]


@pytest.mark.parametrize("dataset", ["aigw_dev; DROP TABLE aigw_dev", "Aigw-Dev", "x" * 65])
def test_a_dataset_that_is_no_identifier_is_refused_before_any_call(
    api_env: FakeCloudflare, capsys: pytest.CaptureFixture[str], dataset: str
) -> None:
    """`--dataset` is put into SQL as a table name, so only a plain identifier passes; anything
    else is one sentence and no API call."""
    argv = ["usage", "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID, "--dataset", dataset]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("aigw: error: --dataset ") and err.count("\n") == 1
    assert api_env.sql == [] and api_env.graphql == []


def test_a_stack_without_analytics_points_to_the_logs(
    api_env: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `aigw:analytics: false` the Worker records nothing: the reports say to read the logs
    instead, in one sentence and without an API call."""
    Path("Pulumi.dev.yaml").write_text(
        f"config:\n  aigw:accountId: {ACCOUNT_ID}\n  aigw:analytics: false\n", encoding="utf-8"
    )
    for command in ("usage", "keys", "clients"):
        assert main([command, "--stack", "dev"]) == 1
        err = capsys.readouterr().err
        assert "aigw:analytics false" in err and "--source logs" in err and err.count("\n") == 1
    assert api_env.sql == []
