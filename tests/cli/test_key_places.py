"""`aigw keys` names each key's config entry from the deployed stack's state, never the key."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.cli.main import main
from infra.resources.key_places import key_places
from infra.worker.pool import key_id
from tests.cloudflare_fake import ACCOUNT_ID, FakeCloudflare

ROOT = Path(__file__).resolve().parents[2]
OPENAI_KEYS = ["sk-test-old-0", "sk-test-revoked-1", "sk-test-new-2"]
ANTHROPIC_KEYS = ["sk-ant-test-0"]
REMOVED_KEY = "sk-test-removed-long-ago"
STACK_FILE = f"config:\n  aigw:accountId: {ACCOUNT_ID}\n"
ENCRYPTED = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
"""How Pulumi marks a secret value in state; the ciphertext stands beside it."""
NOON = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def deployment(places: object) -> dict[str, Any]:
    """A deployment as Pulumi writes it: the stack resource with its outputs, secrets encrypted."""
    outputs: dict[str, Any] = {
        "gatewayId": "aigw-dev",
        "clientTokens": {**ENCRYPTED, "ciphertext": "v1:AAAA:BBBB"},
    }
    if places is not None:
        outputs["keyPlaces"] = places
    return {
        "manifest": {"time": "2026-12-01T00:00:00Z", "version": "v3.272.0"},
        "resources": [
            {
                "urn": "urn:pulumi:dev::aigw::pulumi:pulumi:Stack::aigw-dev",
                "custom": False,
                "type": "pulumi:pulumi:Stack",
                "outputs": outputs,
            },
            {
                "urn": "urn:pulumi:dev::aigw::aigw:index:Gateway::aigw",
                "custom": False,
                "type": "aigw:index:Gateway",
                "parent": "urn:pulumi:dev::aigw::pulumi:pulumi:Stack::aigw-dev",
            },
        ],
    }


def deployed_places() -> dict[str, dict[str, str]]:
    """The keyPlaces output the program exports for this pool (tests/resources checks it)."""
    return key_places({"openai": OPENAI_KEYS, "anthropic": ANTHROPIC_KEYS})


@pytest.fixture
def project(
    cloudflare_api: FakeCloudflare, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """A project directory as a clone has it, with stack `dev`, its home as the file backend's,
    and logs of four keys: three the stack holds, one it no longer does."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.dev.yaml").write_text(STACK_FILE, encoding="utf-8")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    for minute, (key, status) in enumerate(
        [(OPENAI_KEYS[0], 200), (OPENAI_KEYS[1], 401), (OPENAI_KEYS[2], 200), (REMOVED_KEY, 200)]
    ):
        cloudflare_api.add_log(
            NOON + timedelta(minutes=minute), status_code=status, key=key_id(key)
        )
    cloudflare_api.add_log(
        NOON, status_code=200, key=key_id(ANTHROPIC_KEYS[0]), provider="anthropic"
    )
    return tmp_path


def local_state(project: Path, document: dict[str, Any], name: str = "dev.json") -> Path:
    """Write the stack's state where aigw's default backend (`file://~`) keeps it."""
    path = project / "home" / ".pulumi" / "stacks" / "aigw" / name
    path.parent.mkdir(parents=True)
    data = json.dumps(document).encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def checkpoint(places: object) -> dict[str, Any]:
    """A file backend's state file: the deployment under `checkpoint.latest`."""
    return {
        "version": 3,
        "checkpoint": {"stack": "organization/aigw/dev", "latest": deployment(places)},
    }


def places_by_id(capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    """Run `aigw keys --json` and map each key id to the config entry it names."""
    assert main(["keys", "--json", "--source", "logs", *options]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)["keys"]
    every_key = [*OPENAI_KEYS, *ANTHROPIC_KEYS, REMOVED_KEY]
    assert not any(key in captured.out + captured.err for key in every_key)
    return {row["keyId"]: row["place"] for row in rows}


def test_keys_name_each_keys_entry_from_the_local_state(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --stack and the default file backend, each key shows `providerKeys.<p>[<i>]`."""
    local_state(project, checkpoint(deployed_places()))
    assert places_by_id(capsys, "--stack", "dev") == {
        key_id(OPENAI_KEYS[0]): "providerKeys.openai[0]",
        key_id(OPENAI_KEYS[1]): "providerKeys.openai[1]",
        key_id(OPENAI_KEYS[2]): "providerKeys.openai[2]",
        key_id(ANTHROPIC_KEYS[0]): "providerKeys.anthropic[0]",
        key_id(REMOVED_KEY): None,
    }


def test_keys_table_shows_the_entry_to_replace_and_says_what_unknown_means(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The revoked key's line ends with its entry; a key the stack no longer holds is unknown."""
    state = local_state(project, checkpoint(deployed_places()))
    assert main(["keys", "--stack", "dev", "--source", "logs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    revoked = next(line for line in lines if key_id(OPENAI_KEYS[1]) in line)
    assert revoked.split()[2] == "replace" and revoked.split()[-1] == "providerKeys.openai[1]"
    removed = next(line for line in lines if key_id(REMOVED_KEY) in line)
    assert removed.split()[-1] == "unknown"
    assert f"is not in the deployed stack ({state})" in " ".join(" ".join(lines).split())


def test_keys_read_a_compressed_state_and_a_stack_export(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gzipped state file, and `pulumi stack export` output given with --state, both work."""
    local_state(project, checkpoint(deployed_places()), name="dev.json.gz")
    assert (
        places_by_id(capsys, "--stack", "dev")[key_id(OPENAI_KEYS[2])] == "providerKeys.openai[2]"
    )
    export = project / "export.json"
    places = key_places({"openai": ["sk-test-other-stack"]})
    export.write_text(json.dumps({"version": 3, "deployment": deployment(places)}))
    found = places_by_id(capsys, "--stack", "dev", "--state", str(export))
    assert found[key_id(OPENAI_KEYS[2])] is None


def test_keys_without_a_local_state_say_how_to_name_entries(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another backend (or no deployment yet): every entry is unknown, with the export hint."""
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    assert set(places_by_id(capsys, "--stack", "dev").values()) == {None}
    assert main(["keys", "--stack", "dev", "--source", "logs"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "pulumi stack export --stack dev --file FILE" in text and "--state FILE" in text


def test_keys_of_a_stack_not_deployed_from_here_say_where_they_looked(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local backend holds no state for the stack: the hint names the folder it read."""
    assert main(["keys", "--stack", "dev", "--source", "logs"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    folder = project / "home" / ".pulumi" / "stacks"
    assert f"stack dev has no state in {folder} (not deployed from here?)" in text
    assert "--state FILE" in text


def test_keys_of_a_stack_deployed_before_key_places_say_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state without the keyPlaces output asks for `make up` with this version."""
    local_state(project, checkpoint(None))
    assert main(["keys", "--stack", "dev", "--source", "logs"]) == 0
    assert "no keyPlaces output yet" in capsys.readouterr().out


def test_keys_with_a_broken_state_file_is_one_clear_sentence(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state file that is not JSON stops with one sentence naming it."""
    path = local_state(project, checkpoint(deployed_places()))
    path.write_text("{not json", encoding="utf-8")
    assert main(["keys", "--stack", "dev", "--source", "logs"]) == 1
    error = capsys.readouterr().err
    assert "aigw: error: cannot read the stack state" in error and "Traceback" not in error
