"""Against real Cloudflare: deploy a stack, send a request through its Worker, find it logged."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import cloudflare
import httpx
import openai
import pytest

from infra.cli import api, events, gateway_analytics
from infra.settings import analytics_dataset, client_names, load, spend_limit_rules
from tests.cloud.ephemeral import (
    BUDGET_CLIENT,
    DEFAULT_MODEL,
    FIRST_CLIENT,
    MODEL_ENV,
    REQUIRED_ENV,
    DeployedStack,
    missing_requirements,
    stack_config,
)

READY_TIMEOUT_S = 120
LOG_TIMEOUT_S = 180
POLL_INTERVAL_S = 5
BUDGET_ATTEMPTS = 12
"""Completions a client with a tiny budget may send before the spend limit must have refused one
(spend is recorded after each request completes, so the first ones pass)."""


def _wait_until_serving(url: str) -> None:
    """A new workers.dev route takes a little while to answer; poll /healthz, bounded."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{url}/healthz", timeout=10).status_code
        except httpx.HTTPError:
            status = None
        if status == 200:
            return
        time.sleep(POLL_INTERVAL_S)
    pytest.fail(f"{url}/healthz never answered 200 within {READY_TIMEOUT_S}s (last: {status})")


def _client(deployed_stack: DeployedStack) -> openai.OpenAI:
    """The official SDK as the stack's first client, no retries."""
    return openai.OpenAI(
        base_url=deployed_stack.openai_base_url,
        api_key=deployed_stack.client_token,
        max_retries=0,
        timeout=60,
    )


def _log_summary(log: Any) -> dict[str, Any]:
    # Only fields that are safe to print: a log also holds request headers, which the report
    # of a failed assertion would otherwise show.
    return {
        "provider": log.provider,
        "path": log.path,
        "success": log.success,
        "status_code": log.status_code,
        "metadata": log.metadata,
    }


def _find_log(client: cloudflare.Cloudflare, stack: DeployedStack, log_id: str | None) -> Any:
    """The gateway's log of our request, polled until it shows up (logs land a little later)."""
    deadline = time.monotonic() + LOG_TIMEOUT_S
    while time.monotonic() < deadline:
        if log_id is not None:
            try:
                return client.ai_gateway.logs.get(
                    log_id, account_id=stack.account_id, gateway_id=stack.gateway_id
                )
            except cloudflare.NotFoundError:
                pass
        else:
            # The gateway is this run's own, so any chat completion logged in it is ours.
            for log in client.ai_gateway.logs.list(
                stack.gateway_id, account_id=stack.account_id, per_page=20
            ):
                if log.path.endswith("chat/completions"):
                    return log
        time.sleep(POLL_INTERVAL_S)
    pytest.fail(f"gateway {stack.gateway_id} logged no chat completion within {LOG_TIMEOUT_S}s")


@pytest.mark.parametrize(
    ("environ", "which", "expected"),
    [
        pytest.param({}, "/usr/bin/pulumi", list(REQUIRED_ENV), id="nothing set"),
        pytest.param(
            {"CLOUDFLARE_API_TOKEN": "t", "CLOUDFLARE_ACCOUNT_ID": "a"},
            "/usr/bin/pulumi",
            ["AIGW_TEST_OPENAI_KEY"],
            id="no upstream key",
        ),
        pytest.param(
            {"CLOUDFLARE_API_TOKEN": "", "CLOUDFLARE_ACCOUNT_ID": "a", "AIGW_TEST_OPENAI_KEY": "k"},
            "/usr/bin/pulumi",
            ["CLOUDFLARE_API_TOKEN"],
            id="empty token",
        ),
        pytest.param(
            dict.fromkeys(REQUIRED_ENV, "x"), None, ["Pulumi CLI is not on PATH"], id="no CLI"
        ),
    ],
)
def test_skip_reason_names_exactly_what_is_missing(
    environ: dict[str, str], which: str | None, expected: list[str]
) -> None:
    """Without credentials or the Pulumi CLI the skip message names each missing thing, only it."""
    reason = missing_requirements(environ, lambda _name: which)
    assert reason is not None
    assert all(needle in reason for needle in expected), reason
    assert [name for name in REQUIRED_ENV if name in reason] == [
        name for name in expected if name in REQUIRED_ENV
    ]


def test_nothing_is_missing_when_everything_is_set() -> None:
    """With every variable set and the CLI on PATH the real-cloud test runs instead of skipping."""
    assert (
        missing_requirements(dict.fromkeys(REQUIRED_ENV, "x"), lambda _name: "/bin/pulumi") is None
    )


def test_ephemeral_stack_config_is_valid() -> None:
    """The real-cloud stack's config passes validation, with one budget, on the frugal client."""
    config = stack_config("0123456789abcdef0123456789abcdef", "sk-test-a")
    settings, secrets = load(
        {key.removeprefix("aigw:"): value.value for key, value in config.items()}, "cloudtest"
    )
    assert client_names(settings, secrets) == (FIRST_CLIENT, BUDGET_CLIENT)
    assert list(spend_limit_rules(settings, client_names(settings, secrets))) == [BUDGET_CLIENT]


@pytest.mark.cloud
@pytest.mark.timeout(1200)
def test_chat_completion_through_the_worker_is_logged_by_the_gateway(
    deployed_stack: DeployedStack,
) -> None:
    """A chat completion through a freshly deployed Worker answers and shows in the gateway log."""
    _wait_until_serving(deployed_stack.url)
    client = _client(deployed_stack)
    raw = client.chat.completions.with_raw_response.create(
        model=os.environ.get(MODEL_ENV, DEFAULT_MODEL),
        messages=[{"role": "user", "content": "Answer with the single word: pong"}],
        max_tokens=5,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content

    log = _find_log(cloudflare.Cloudflare(), deployed_stack, raw.headers.get("cf-aig-log-id"))
    summary = _log_summary(log)
    assert (summary["provider"], summary["success"]) == ("openai", True), summary
    # The Worker tags each request with the client's name and the id of the key it used.
    key_id = hashlib.sha256(deployed_stack.provider_key.encode()).hexdigest()[:8]
    metadata = summary["metadata"] or ""
    assert deployed_stack.client_name in metadata and key_id in metadata, summary


@pytest.mark.cloud
@pytest.mark.timeout(1200)
def test_client_over_its_budget_gets_budget_exceeded(deployed_stack: DeployedStack) -> None:
    """A client whose tiny budget is spent is refused by AI Gateway's spend limit: 429
    budget_exceeded, naming the client (this is what checks that spend limits count requests that
    carry the Worker's own provider key)."""
    _wait_until_serving(deployed_stack.url)
    client = openai.OpenAI(
        base_url=deployed_stack.openai_base_url,
        api_key=deployed_stack.client_tokens[BUDGET_CLIENT],
        max_retries=0,
        timeout=60,
    )
    statuses: list[int] = []
    for _ in range(BUDGET_ATTEMPTS):
        try:
            client.chat.completions.create(
                model=os.environ.get(MODEL_ENV, DEFAULT_MODEL),
                messages=[{"role": "user", "content": "Answer with the single word: pong"}],
                max_tokens=5,
            )
            statuses.append(200)
        except openai.APIStatusError as error:
            statuses.append(error.status_code)
            if error.status_code == 429:
                body = error.response.json()["error"]
                assert body["code"] == "budget_exceeded", body
                assert BUDGET_CLIENT in body["message"], body
                return
            raise
        time.sleep(POLL_INTERVAL_S)
    pytest.fail(f"{BUDGET_ATTEMPTS} completions over a tiny budget were all served: {statuses}")


@pytest.mark.cloud
@pytest.mark.timeout(900)
def test_reports_read_the_worker_events_and_the_gateway_analytics(
    deployed_stack: DeployedStack,
) -> None:
    """The Worker's data point reaches Analytics Engine and `aigw usage`'s SQL finds it there;
    AI Gateway's GraphQL analytics answers the exact query aigw sends, with the request's cost."""
    _wait_until_serving(deployed_stack.url)
    _client(deployed_stack).chat.completions.create(
        model=os.environ.get(MODEL_ENV, DEFAULT_MODEL),
        messages=[{"role": "user", "content": "Answer with the single word: pong"}],
        max_tokens=5,
    )
    target = api.Target(deployed_stack.account_id, deployed_stack.gateway_id, None, None)
    dataset = analytics_dataset(deployed_stack.gateway_id)  # workerName and gatewayId agree here
    now = datetime.now(UTC)
    sql = events.SqlClient(cloudflare.Cloudflare(), deployed_stack.account_id)
    deadline = time.monotonic() + LOG_TIMEOUT_S
    counts: dict[str, dict[str, int]] = {}
    while time.monotonic() < deadline:
        query = events.clients_query(dataset, now - timedelta(hours=1), datetime.now(UTC))
        try:
            counts = events.outcome_counts(sql.rows(query), "client")
        except events.SqlError:
            counts = {}  # the dataset's table appears with its first data point
        if counts.get(deployed_stack.client_name, {}).get("answered"):
            break
        time.sleep(POLL_INTERVAL_S)
    assert counts.get(deployed_stack.client_name, {}).get("answered", 0) >= 1, counts
    windows = [gateway_analytics.GatewayWindow(now - timedelta(hours=1), datetime.now(UTC))]
    groups = gateway_analytics.read_gateway_usage(cloudflare.Cloudflare(), target, windows)[0]
    assert sum(group.requests for group in groups) >= 1, groups
