"""Deploys Cloudflare accepts whatever the number of keys and clients."""

from __future__ import annotations

from pulumi_harness import ACCOUNT, reveal, run_program

from infra.secret_bindings import WORKER_VARIABLE_LIMITS

SCRIPT = "cloudflare:index/workersScript:WorkersScript"

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
