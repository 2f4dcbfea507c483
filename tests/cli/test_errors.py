"""Every command's failure modes: one clear sentence on stderr, exit 1, no traceback, no token."""

from __future__ import annotations

import json

import pytest

from infra.cli.main import main
from tests.cli.conftest import fails
from tests.cloudflare_fake import ACCOUNT_ID, GATEWAY_ID, FakeCloudflare

TARGET = ["--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID]


def write_stack(stack: str, text: str) -> None:
    """Write `Pulumi.<stack>.yaml` in the current (temporary) directory."""
    with open(f"Pulumi.{stack}.yaml", "w", encoding="utf-8") as file:
        file.write(text)


@pytest.mark.parametrize("command", [["usage"], ["usage", "--json"], ["clients", "--json"]])
def test_wrong_token_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """A token the API refuses names the variable to fix and the permission it needs."""
    cloudflare_api.token = "another-token"
    err = fails(capsys, [*command, *TARGET])
    assert "refused the token" in err
    assert "HTTP 403: Authentication error [code 10000]" in err
    assert "CLOUDFLARE_API_TOKEN" in err and "AI Gateway Read" in err


def test_missing_gateway_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs of a gateway that does not exist: the id, the account, and where the id came from."""
    argv = ["usage", "--account-id", ACCOUNT_ID, "--gateway-id", "aigw-prod", "--source", "logs"]
    err = fails(capsys, argv)
    assert f"gateway 'aigw-prod' was not found in account {ACCOUNT_ID} (HTTP 404)" in err
    assert "--gateway-id" in err


@pytest.mark.parametrize("command", [["usage"], ["doctor"], ["clients"]])
def test_network_failure_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    unused_port: int,
    command: list[str],
) -> None:
    """An API nobody answers at names the address and what to check."""
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", f"http://127.0.0.1:{unused_port}/client/v4")
    if command == ["doctor"]:
        # doctor reports an unreachable API as its failing token check, not as a crash.
        assert main([*command, "--json", *TARGET]) == 1
        out = capsys.readouterr().out
        assert f"could not reach the Cloudflare API at http://127.0.0.1:{unused_port}" in out
        return
    err = fails(capsys, [*command, *TARGET])
    assert f"could not reach the Cloudflare API at http://127.0.0.1:{unused_port}" in err
    assert "Connection refused" in err
    assert "check the network connection and CLOUDFLARE_BASE_URL" in err


@pytest.mark.parametrize("status", [500, 502, 503])
def test_api_error_page_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    """An HTML error page instead of the JSON envelope is reported as such, not dumped."""
    cloudflare_api.error_page_status = status
    err = fails(capsys, ["usage", *TARGET])
    assert f"answered HTTP {status} with an error page instead of JSON" in err
    assert "<html>" not in err


def test_missing_api_token_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without CLOUDFLARE_API_TOKEN nothing is sent and the user learns what to create."""
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    err = fails(capsys, ["doctor", *TARGET])
    assert "CLOUDFLARE_API_TOKEN is not set" in err and "AI Gateway Read" in err
    assert cloudflare_api.calls == []


def test_missing_account_id_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """No flag, stack file or CLOUDFLARE_ACCOUNT_ID: say where an account id can come from."""
    err = fails(capsys, ["usage", "--gateway-id", GATEWAY_ID])
    assert "no account id" in err and "CLOUDFLARE_ACCOUNT_ID" in err


def test_account_id_comes_from_the_environment_last(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CLOUDFLARE_ACCOUNT_ID is used when neither a flag nor a stack names the account."""
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", ACCOUNT_ID)
    assert main(["usage", "--json", "--source", "logs", "--gateway-id", GATEWAY_ID]) == 0
    assert any(path.startswith(f"/accounts/{ACCOUNT_ID}/") for path, _ in cloudflare_api.calls)


def test_missing_stack_file_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--stack` naming a stack with no config file here says what else to do."""
    err = fails(capsys, ["usage", "--stack", "prod"])
    assert "stack 'prod' has no configuration file Pulumi.prod.yaml" in err
    assert "--account-id" in err


def test_invalid_stack_setting_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stack file with an invalid setting is reported with the key, as `pulumi up` would."""
    write_stack("dev", f"config:\n  aigw:accountId: {ACCOUNT_ID}\n  aigw:cacheTtl: soon\n")
    err = fails(capsys, ["doctor", "--stack", "dev"])
    assert "Pulumi.dev.yaml: aigw:cacheTtl: got 'soon'" in err
    assert cloudflare_api.calls == []


def test_several_stack_files_ask_for_one(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """With several stack files and no --stack, the command asks which one, as `aigw dev` does."""
    for stack in ("dev", "prod"):
        write_stack(stack, f"config:\n  aigw:accountId: {ACCOUNT_ID}\n")
    err = fails(capsys, ["doctor"])
    assert "several stacks (dev, prod); choose one with --stack" in err
    assert cloudflare_api.calls == []


def test_encrypted_plain_setting_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-secret setting stored encrypted is named, with the command that stores it plainly."""
    write_stack("dev", "config:\n  aigw:accountId:\n    secure: v1:abc\n")
    err = fails(capsys, ["usage", "--stack", "dev"])
    assert "Pulumi.dev.yaml: aigw:accountId is stored encrypted" in err
    assert "pulumi config set aigw:accountId <value>" in err
    assert cloudflare_api.calls == []


def test_explicit_ids_need_no_stack_among_several(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given --account-id and --gateway-id, several stack files in the folder do not matter."""
    for stack in ("dev", "prod"):
        write_stack(stack, f"config:\n  aigw:accountId: {ACCOUNT_ID}\n")
    assert main(["usage", "--json", "--source", "logs", *TARGET]) == 0
    assert json.loads(capsys.readouterr().out)["total"]["requests"] == 0


def test_broken_stack_file_does_not_quote_its_lines(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A YAML error names the file and line, never the line's text (it may hold a secret)."""
    write_stack("dev", "config:\n  aigw:gatewayToken: plain-token-value: [\n")
    err = fails(capsys, ["doctor", "--stack", "dev"])
    assert "Pulumi.dev.yaml is not valid YAML at line 2" in err
    assert "plain-token-value" not in err
    assert cloudflare_api.calls == []
