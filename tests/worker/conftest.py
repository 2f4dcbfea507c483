"""Fixtures for the Worker tests: the loopback fake gateway and the rendered Worker in workerd."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import pytest

from infra.cli.local_analytics import LocalAnalytics
from infra.cli.workerd import RunningWorker, serve_worker
from infra.providers import secret_values
from infra.settings import load, rate_limit_bindings
from infra.worker.render import render_worker
from tests.upstream import ACCOUNT_ID, GATEWAY_ID, FakeGateway

# Recognisable fakes: short, obviously not real, and distinct enough to search logs and bodies for.
OPENAI_KEYS = ("sk-test-a", "sk-test-b", "sk-test-c")
ANTHROPIC_KEYS = ("sk-ant-test-a", "sk-ant-test-b")
CLIENT_TOKENS = {"alice": "tok-test-alice-0001", "bob": "tok-test-bob-000002"}
GATEWAY_TOKEN = "cfgw-test-token"
TOKEN = CLIENT_TOKENS["alice"]
"""The client token most tests present."""
AUTH = {"authorization": f"Bearer {TOKEN}"}
"""`TOKEN` as the OpenAI SDK sends it."""
SECRETS = (*OPENAI_KEYS, *ANTHROPIC_KEYS, *CLIENT_TOKENS.values(), GATEWAY_TOKEN)
"""Every secret the Worker is given; none may appear in a response, a header or workerd's log."""

MakeWorker = Callable[..., RunningWorker]


def leaked(text: str | bytes, secrets: Iterable[str]) -> list[int]:
    """Positions in `secrets` of those found in `text` (so an assertion on it shows no secret)."""
    data = text.encode() if isinstance(text, str) else text
    return [number for number, secret in enumerate(secrets) if secret.encode() in data]


@pytest.fixture
def upstream() -> Iterator[FakeGateway]:
    """A fresh fake AI Gateway on 127.0.0.1."""
    with FakeGateway() as gateway:
        yield gateway


@pytest.fixture
def make_worker(upstream: FakeGateway, tmp_path: Path) -> Iterator[MakeWorker]:
    """Serve the real rendered Worker in workerd against `upstream`; takes `aigw:` settings.

    `provider_keys` defaults to the OpenAI and Anthropic test pools; `upstream_timeout_ms` lowers
    how long the Worker waits for the gateway's headers; `gateway_url` points the Worker at
    another loopback gateway than `upstream`; `analytics` binds the Worker's Analytics Engine
    dataset to that loopback collector. At teardown, workerd's log is checked for
    every secret the Worker was given.
    """
    with ExitStack() as stack:
        logs: list[tuple[Path, tuple[str, ...]]] = []

        def make(
            provider_keys: Mapping[str, tuple[str, ...]] | None = None,
            client_tokens: Mapping[str, str | list[str]] | None = None,
            upstream_timeout_ms: int | None = None,
            gateway_url: str | None = None,
            analytics: LocalAnalytics | None = None,
            **config: object,
        ) -> RunningWorker:
            pools = dict(provider_keys or {"openai": OPENAI_KEYS, "anthropic": ANTHROPIC_KEYS})
            tokens = dict(client_tokens or CLIENT_TOKENS)
            raw = {
                "accountId": ACCOUNT_ID,
                "gatewayId": GATEWAY_ID,
                "providerKeys": {slug: list(keys) for slug, keys in pools.items()},
                "clientTokens": tokens,
                "gatewayToken": GATEWAY_TOKEN,
                **config,
            }
            settings, secrets = load(raw, "test")
            timeout = (
                {} if upstream_timeout_ms is None else {"upstream_timeout_ms": upstream_timeout_ms}
            )
            source = render_worker(settings, gateway_url=gateway_url or upstream.url, **timeout)
            log = tmp_path / f"workerd-{len(logs)}.log"
            given = (
                *(key for keys in pools.values() for key in keys),
                *(t for ts in secrets.client_tokens.values() for t in ts),
            )
            logs.append((log, (*given, GATEWAY_TOKEN)))
            bindings = secret_values(
                secrets.provider_keys, secrets.client_tokens, secrets.gateway_token
            )
            limits = rate_limit_bindings(settings)
            return stack.enter_context(
                serve_worker(
                    source, bindings, log_path=log, rate_limits=limits, analytics=analytics
                )
            )

        yield make
    for log, secrets in logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        positions = leaked(text, secrets)
        assert positions == [], f"workerd log {log} contains secrets"


@pytest.fixture
def worker(make_worker: MakeWorker) -> RunningWorker:
    """The Worker with the default test settings and pools."""
    return make_worker()
