"""`aigw doctor` against the loopback Cloudflare API: each check, its fix, and the exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.cli.main import main
from tests.cloudflare_fake import ACCOUNT_ID, GATEWAY_ID, FakeCloudflare

STACK_FILE = f"""\
config:
  aigw:accountId: {ACCOUNT_ID}
  aigw:cacheTtl: "300"
  aigw:rateLimit:
    limit: 100
    interval: 60
    technique: sliding
  aigw:providerKeys:
    secure: v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBBBBBBBB
"""
"""A stack `dev` as `pulumi config set` writes it: the gateway id is the default, aigw-dev."""


def matching_gateway(fake: FakeCloudflare) -> None:
    """The gateway as `pulumi up` of STACK_FILE leaves it."""
    fake.add_gateway(
        cache_ttl=300,
        rate_limiting_limit=100,
        rate_limiting_interval=60,
        rate_limiting_technique="sliding",
    )


def doctor(
    capsys: pytest.CaptureFixture[str], *options: str
) -> tuple[int, dict[str, dict[str, str]]]:
    """Run `aigw doctor --json`; the exit status and the checks by name."""
    status = main(["doctor", "--json", *options])
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is (status == 0)
    return status, {check["name"]: check for check in document["checks"]}


@pytest.fixture
def stack(cloudflare_api: FakeCloudflare) -> Path:
    """`Pulumi.dev.yaml` in the current directory, and a gateway that matches it."""
    path = Path("Pulumi.dev.yaml")
    path.write_text(STACK_FILE, encoding="utf-8")
    matching_gateway(cloudflare_api)
    return path


def test_doctor_passes_when_everything_matches_the_stack(
    stack: Path, cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Token, account, gateway, four settings and the Worker's /healthz all ok: exit 0."""
    status, checks = doctor(capsys, "--stack", "dev", "--url", cloudflare_api.url + "/")
    assert status == 0
    assert {name: check["status"] for name, check in checks.items()} == {
        "token": "ok",
        "account": "ok",
        "gateway": "ok",
        "authentication": "ok",
        "collect logs": "ok",
        "cache ttl": "ok",
        "rate limit": "ok",
        "worker": "ok",
    }
    assert checks["rate limit"]["detail"] == "100 requests per 60 s (sliding)"
    assert checks["account"]["detail"] == f"Example Account ({ACCOUNT_ID})"
    assert checks["worker"]["detail"] == f"{cloudflare_api.url}/healthz answered 200"


def test_doctor_prints_one_line_per_check(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The human report has a line per check with its mark, and a summary."""
    assert main(["doctor"]) == 0  # the only stack file is picked up without --stack
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["ok", "token"]
    assert any(line.split()[:3] == ["ok", "cache", "ttl"] for line in lines)
    assert any(line.startswith("skip worker") for line in lines)
    assert lines[-1] == "all checks passed"


@pytest.mark.parametrize(
    ("drift", "check", "detail"),
    [
        ({"authentication": False}, "authentication", "gateway has off, stack wants on"),
        ({"collect_logs": False}, "collect logs", "gateway has off, stack wants on"),
        ({"cache_ttl": 60}, "cache ttl", "gateway has 60 s, stack wants 300 s"),
        (
            {"rate_limiting_limit": 0},
            "rate limit",
            "gateway has off, stack wants 100 requests per 60 s (sliding)",
        ),
        (
            {"rate_limiting_technique": "fixed"},
            "rate limit",
            "gateway has 100 requests per 60 s (fixed), "
            "stack wants 100 requests per 60 s (sliding)",
        ),
    ],
)
def test_doctor_fails_when_a_gateway_setting_drifted(
    stack: Path,
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    drift: dict[str, object],
    check: str,
    detail: str,
) -> None:
    """A setting changed outside Pulumi is one failing line that says how to put it back."""
    cloudflare_api.gateways[GATEWAY_ID].update(drift)
    status, checks = doctor(capsys, "--stack", "dev")
    assert status == 1
    assert checks[check]["status"] == "fail"
    assert checks[check]["detail"] == detail
    assert "pulumi up --stack dev" in checks[check]["fix"]
    assert [name for name, c in checks.items() if c["status"] == "fail"] == [check]


def test_doctor_fails_when_the_gateway_is_missing(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gateway id that does not exist fails its check with how to fix it: exit 1."""
    status, checks = doctor(capsys, "--account-id", ACCOUNT_ID, "--gateway-id", "aigw-prod")
    assert status == 1
    assert checks["gateway"]["status"] == "fail"
    assert checks["gateway"]["detail"] == f"no gateway 'aigw-prod' in account {ACCOUNT_ID}"
    assert "aigw:gatewayId" in checks["gateway"]["fix"]
    assert "settings" not in checks and "cache ttl" not in checks


def test_doctor_fails_on_a_wrong_token_and_checks_nothing_else(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token Cloudflare does not know fails the first check; the gateway is not asked."""
    cloudflare_api.token = "another-token"
    status, checks = doctor(capsys, "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID)
    assert status == 1
    assert checks["token"]["status"] == "fail"
    assert "refused the token" in checks["token"]["detail"]
    assert "HTTP 401" in checks["token"]["detail"]
    assert checks["gateway"]["status"] == "skip"
    assert not any("/ai-gateway/" in path for path, _ in cloudflare_api.calls)


def test_doctor_accepts_an_account_owned_token(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token only the account's verify endpoint knows is still a working token."""
    cloudflare_api.token_owner = "account"
    status, checks = doctor(capsys, "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID)
    assert status == 0
    assert checks["token"] == {
        "name": "token",
        "status": "ok",
        "detail": "active account token",
        "fix": "",
    }


@pytest.mark.parametrize("token_status", ["disabled", "expired"])
def test_doctor_fails_on_an_inactive_token(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], token_status: str
) -> None:
    """A token that verifies but is not active fails the token check."""
    cloudflare_api.token_status = token_status
    status, checks = doctor(capsys, "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID)
    assert status == 1
    assert checks["token"]["detail"] == f"the token is {token_status}"


def test_doctor_only_warns_when_the_token_cannot_read_account_details(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token with AI Gateway Read alone cannot read the account; that is not a failure."""
    cloudflare_api.account_readable = False
    status, checks = doctor(capsys, "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID)
    assert status == 0
    assert checks["account"]["status"] == "warn"
    assert "Account Settings Read" in checks["account"]["fix"]
    assert checks["gateway"]["status"] == "ok"


@pytest.mark.parametrize(
    ("health", "detail"),
    [
        (503, "/healthz answered HTTP 503"),
        (None, "/healthz did not answer (ConnectError)"),
    ],
)
def test_doctor_fails_when_the_worker_is_unhealthy(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    unused_port: int,
    health: int | None,
    detail: str,
) -> None:
    """`--url` whose /healthz is not 200, or does not answer, fails the worker check."""
    url = cloudflare_api.url if health else f"http://127.0.0.1:{unused_port}"
    if health:
        cloudflare_api.health_status = health
    status, checks = doctor(
        capsys, "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID, "--url", url
    )
    assert status == 1
    assert checks["worker"]["status"] == "fail"
    assert checks["worker"]["detail"] == f"{url}{detail}"
