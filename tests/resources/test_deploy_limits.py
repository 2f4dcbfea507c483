"""Deploys Cloudflare accepts whatever their size, and a Worker rename that keeps its hostname."""

from __future__ import annotations

import pytest
from pulumi_harness import ACCOUNT, ZONE, reveal, run_program

from infra.resources.gateway import FREE_PLAN_MAX_LOGS
from infra.secret_bindings import WORKER_VARIABLE_LIMITS

SCRIPT = "cloudflare:index/workersScript:WorkersScript"
CUSTOM_DOMAIN = "cloudflare:index/workersCustomDomain:WorkersCustomDomain"

# About 32 OpenAI project keys (164 characters each) used to overflow one variable; 40 need two.
PROJECT_KEYS = [f"sk-proj-test-{number:03d}-" + "k" * 147 for number in range(40)]
MINIMAL: dict[str, object] = {"accountId": ACCOUNT, "providerKeys": {"openai": PROJECT_KEYS[:1]}}


def _secret_texts(config: dict[str, object]) -> dict[str, str]:
    bindings = reveal(run_program(config).one(SCRIPT).inputs["bindings"])
    return {b["name"]: b["text"] for b in bindings if b["type"] == "secret_text"}


def test_large_pools_and_many_generated_clients_are_numbered_bindings() -> None:
    """40 project keys and 120 generated client tokens go out as numbered bindings, none over
    Cloudflare's size, holding every key and every token in order."""
    clients = {f"client-{number:03d}": {} for number in range(120)}
    config = MINIMAL | {"providerKeys": {"openai": PROJECT_KEYS}, "clients": clients}
    texts = _secret_texts(config)
    assert list(texts) == [
        "OPENAI_API_KEYS",
        "OPENAI_API_KEYS_2",
        "CLIENT_TOKENS",
        "CLIENT_TOKENS_2",
        "GATEWAY_TOKEN",
    ]
    assert max(len(text.encode()) for text in texts.values()) <= WORKER_VARIABLE_LIMITS.value_bytes
    keys = texts["OPENAI_API_KEYS"].split("\n") + texts["OPENAI_API_KEYS_2"].split("\n")
    assert keys == PROJECT_KEYS
    entries = texts["CLIENT_TOKENS"].split("\n") + texts["CLIENT_TOKENS_2"].split("\n")
    assert [entry.partition(":")[0] for entry in entries] == list(clients)


def test_a_stack_over_the_variable_limit_registers_nothing() -> None:
    """A configuration needing more variables than a Worker may have stops before any resource."""
    keys = [f"{number:02d}" + "k" * 2498 for number in range(63)]
    run = run_program(MINIMAL | {"providerKeys": {"openai": keys}}, expect_error=True)
    assert "need 65 Worker variables" in str(run.error)
    assert run.registrations == []


@pytest.mark.parametrize(
    ("max_logs", "warned"),
    [(FREE_PLAN_MAX_LOGS, False), (FREE_PLAN_MAX_LOGS + 1, True), (10_000_000, True)],
)
def test_log_retention_above_the_free_plan_warns_once(max_logs: int, warned: bool) -> None:
    """Above 100,000 logs the preview prints one warning naming the Free plan's limit; the value
    still reaches the gateway, which the provider accepts up to 10,000,000."""
    run = run_program(MINIMAL | {"logRetention": {"maxLogs": max_logs}})
    gateway = run.one("cloudflare:index/aiGateway:AiGateway")
    assert gateway.inputs["logManagement"] == max_logs
    about_logs = [warning for warning in run.warnings if "maxLogs" in warning]
    if not warned:
        assert about_logs == []
        return
    assert len(about_logs) == 1
    assert f"aigw:logRetention.maxLogs is {max_logs:,}" in about_logs[0]
    assert "Workers Free plan AI Gateway stores at most 100,000 logs" in about_logs[0]


def test_no_warning_for_a_stack_within_every_limit() -> None:
    """A stack without log retention, or with the default, hears nothing."""
    assert run_program(MINIMAL).warnings == []


def test_the_custom_domain_is_deleted_before_it_is_replaced() -> None:
    """A rename replaces the hostname's attachment; the old one goes first, so deleting it can
    never detach the new one (the hostname is unserved for a moment instead)."""
    config = MINIMAL | {"customDomain": {"zoneId": ZONE, "hostname": "ai.example.com"}}
    run = run_program(config)
    assert run.one(CUSTOM_DOMAIN).delete_before_replace
    assert [r.type for r in run.registrations if r.delete_before_replace] == [CUSTOM_DOMAIN]
