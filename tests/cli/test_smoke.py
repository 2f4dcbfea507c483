"""`aigw smoke` through the real rendered Worker in workerd, in front of the loopback gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra import settings
from infra.cli.main import main
from infra.cli.workerd import RunningWorker, serve_worker
from infra.worker.render import render_worker
from tests.cloudflare_fake import (
    ACCOUNT_ID,
    API_TOKEN,
    GATEWAY_ID,
    GATEWAY_TOKEN,
    FakeCloudflare,
    key_id,
)

POOL = ("sk-test-a", "sk-test-b")
CLIENT_TOKEN = "smoke-client-token-0001"
TARGET = ["--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID]


@pytest.fixture
def worker(cloudflare_api: FakeCloudflare) -> Iterator[RunningWorker]:
    """The rendered Worker in workerd, with its gateway base URL on the loopback fake."""
    stack, _ = settings.load(
        {"accountId": ACCOUNT_ID, "gatewayId": GATEWAY_ID, "providerKeys": {"openai": list(POOL)}},
        "dev",
    )
    source = render_worker(stack, gateway_url=cloudflare_api.gateway_url)
    bindings = {
        "OPENAI_API_KEYS": ",".join(POOL),
        "CLIENT_TOKENS": f"smoke:{CLIENT_TOKEN}",
        "GATEWAY_TOKEN": GATEWAY_TOKEN,
    }
    with serve_worker(source, bindings) as running:
        yield running


def smoke(worker: RunningWorker, *options: str) -> list[str]:
    """`aigw smoke` against the Worker; its exit status checked by the caller via the lines."""
    return ["smoke", "--url", worker.url, *TARGET, "--log-wait", "5", *options]


def test_smoke_passes_and_names_the_key_that_served(
    worker: RunningWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both completions answer, both are found in the logs with the Worker's client and key id."""
    assert main([*smoke(worker), "--token", CLIENT_TOKEN]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("ok   completion") and "answered 'pong'" in lines[0]
    assert lines[1].startswith("ok   stream") and "streamed 'pong'" in lines[1]
    logged = [line for line in lines if line.split()[1] == "logged"]
    assert [line.split()[2] for line in logged] == ["completion:", "stream:"]
    served = {key_id(key) for key in POOL}
    for line in logged:
        assert line.startswith("ok")
        assert "client smoke" in line
        assert any(f"key {kid}" in line for kid in served)
    assert lines[-1] == "smoke test passed"
    for secret in (*POOL, CLIENT_TOKEN, GATEWAY_TOKEN, API_TOKEN):
        assert secret not in out


def test_smoke_finds_logs_by_time_without_a_log_id(
    worker: RunningWorker, cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without `cf-aig-log-id`, each request is matched to the next log after it was sent."""
    cloudflare_api.gateway_sends_log_id = False
    assert main([*smoke(worker), "--token", CLIENT_TOKEN]) == 0
    out = capsys.readouterr().out
    assert "completion: log log00001, key" in out and "stream: log log00002, key" in out


def test_smoke_fails_when_the_requests_never_reach_the_logs(
    worker: RunningWorker, cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Answers without logs (log collection off) fail the smoke test after the bounded wait."""
    cloudflare_api.gateway_logs_requests = False
    argv = [*smoke(worker), "--token", CLIENT_TOKEN]
    argv[argv.index("--log-wait") + 1] = "0"
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "ok   completion" in out
    assert (
        f"FAIL logged      stream: not found in the logs of gateway '{GATEWAY_ID}' after 0 s" in out
    )
    assert out.splitlines()[-1] == "smoke test failed"


def test_smoke_fails_on_a_wrong_client_token(
    worker: RunningWorker, cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token the Worker refuses: both requests fail with 401 and a hint, nothing is logged."""
    assert main([*smoke(worker), "--token", "not-a-client-token-01"]) == 1
    out = capsys.readouterr().out
    assert out.count("the Worker answered HTTP 401") == 2
    assert "check --token" in out
    assert "not-a-client-token-01" not in out
    assert cloudflare_api.logs[GATEWAY_ID] == []


def test_smoke_without_a_token_sends_nothing(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No --token and no AIGW_TOKEN is one clear error before any request."""
    monkeypatch.delenv("AIGW_TOKEN", raising=False)
    assert main(["smoke", "--url", cloudflare_api.url, *TARGET]) == 1
    assert "no client token" in capsys.readouterr().err
    assert cloudflare_api.calls == []


def test_smoke_reports_an_unreachable_worker(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], unused_port: int
) -> None:
    """A Worker URL nobody answers at fails both requests with what to check."""
    url = f"http://127.0.0.1:{unused_port}"
    argv = ["smoke", "--url", url, "--token", CLIENT_TOKEN, *TARGET]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert out.count(f"{url}/v1/chat/completions did not answer (ConnectError); check --url") == 2


def test_smoke_refuses_a_token_with_white_space(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pasted token with a space inside is refused before any request, without echoing it."""
    argv = ["smoke", "--url", cloudflare_api.url, "--token", "smoke client", *TARGET]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "the client token contains white space" in err and "smoke client" not in err
    assert cloudflare_api.calls == []
