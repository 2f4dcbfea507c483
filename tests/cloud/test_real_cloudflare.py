"""Against real Cloudflare: deploy a stack, send a request through its Worker, find it logged."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import cloudflare
import httpx
import openai
import pytest

from tests.cloud.ephemeral import (
    DEFAULT_MODEL,
    MODEL_ENV,
    REQUIRED_ENV,
    DeployedStack,
    missing_requirements,
)

READY_TIMEOUT_S = 120
LOG_TIMEOUT_S = 180
POLL_INTERVAL_S = 5


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


@pytest.mark.cloud
@pytest.mark.timeout(1200)
def test_chat_completion_through_the_worker_is_logged_by_the_gateway(
    deployed_stack: DeployedStack,
) -> None:
    """A chat completion through a freshly deployed Worker answers and shows in the gateway log."""
    _wait_until_serving(deployed_stack.url)
    client = openai.OpenAI(
        base_url=deployed_stack.openai_base_url,
        api_key=deployed_stack.client_token,
        max_retries=0,
        timeout=60,
    )
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
