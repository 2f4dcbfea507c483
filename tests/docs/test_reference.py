"""The generated reference pages: every setting in both Pulumi.yaml and the code, never stale."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli.main import build_parser
from infra.cli.reference import (
    CLI_PAGE,
    ERRORS_PAGE,
    PROJECT_FILE,
    SETTINGS_PAGE,
    TROUBLESHOOTING_PAGE,
    cli_reference,
    main,
    pages,
)
from infra.client_policies import ClientPolicy
from infra.reference import (
    PULUMI_YAML_BLOCK,
    ReferenceError,
    declared_settings,
    settings_reference,
    with_pulumi_yaml_block,
)
from infra.setting_forms import (
    CLIENT_POLICY_FIELDS,
    KNOWN_KEYS,
    SCALAR_SETTINGS,
    SETTING_FORMS,
    SettingForm,
)
from infra.settings import SettingsError, load
from infra.worker.errors import WORKER_ERRORS

ROOT = Path(__file__).resolve().parents[2]
PROJECT: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
REQUIRED = {"accountId": "0123456789abcdef0123456789abcdef", "providerKeys": {"openai": ["k"]}}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.parametrize(
    "path", [PROJECT_FILE, SETTINGS_PAGE, CLI_PAGE, ERRORS_PAGE, TROUBLESHOOTING_PAGE], ids=str
)
def test_generated_page_is_current(path: Path) -> None:
    """The committed page is exactly what the generator writes from today's Pulumi.yaml and code:
    `python -m infra.cli.reference` rewrites it."""
    assert (ROOT / path).read_text() == pages(ROOT)[ROOT / path]


def test_check_mode_names_a_stale_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--check` fails on a page that differs from what would be generated, and writes nothing."""
    for path in (PROJECT_FILE, ERRORS_PAGE, TROUBLESHOOTING_PAGE):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((ROOT / path).read_text())
    assert main(["--root", str(tmp_path)]) == 0
    page = tmp_path / SETTINGS_PAGE
    page.write_text(page.read_text().replace("32 lowercase hex digits", "anything"))
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert "anything" in page.read_text()


def test_every_declared_setting_has_a_form_and_every_form_is_known() -> None:
    """Pulumi.yaml, `KNOWN_KEYS` and `SETTING_FORMS` name the same settings."""
    assert set(declared_settings(PROJECT)) == set(KNOWN_KEYS) == set(SETTING_FORMS)


def test_a_setting_declared_only_in_pulumi_yaml_stops_the_generator() -> None:
    """A new key in Pulumi.yaml without its type and allowed values in the code is an error
    naming it, so the reference can never leave a setting out."""
    project = {**PROJECT, "config": {**PROJECT["config"], "aigw:newSetting": {"default": ""}}}
    with pytest.raises(ReferenceError, match=r"aigw:newSetting is in Pulumi\.yaml but not in"):
        settings_reference(project)


def test_a_setting_described_only_in_the_code_stops_the_generator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A form in the code for a key Pulumi.yaml does not declare is an error naming it."""
    forms = {**SETTING_FORMS, "oldSetting": SettingForm("string", "anything")}
    monkeypatch.setattr("infra.reference.SETTING_FORMS", forms)
    with pytest.raises(ReferenceError, match="aigw:oldSetting is in SETTING_FORMS"):
        settings_reference(PROJECT)


def test_typed_declarations_agree_with_the_documented_type() -> None:
    """Where Pulumi.yaml gives a type, the reference's type says the same."""
    words = {"string": "string", "integer": "integer", "boolean": "boolean", "array": "list"}
    declared = declared_settings(PROJECT)
    typed = {key: spec["type"] for key, spec in declared.items() if "type" in spec}
    assert typed
    for key, kind in typed.items():
        assert SETTING_FORMS[key].type.startswith(words[kind]), key


def test_every_policy_field_is_documented() -> None:
    """The reference lists exactly the fields `ClientPolicy` has (in camelCase)."""
    fields = {_camel(field.name) for field in dataclasses.fields(ClientPolicy)}
    assert fields == set(CLIENT_POLICY_FIELDS)


@pytest.mark.parametrize("field", sorted(CLIENT_POLICY_FIELDS))
def test_every_documented_policy_field_is_accepted(field: str) -> None:
    """Each documented field passes validation (null meaning unset), and a made-up one does not."""
    load({**REQUIRED, "clients": {"alice": {field: None}}}, "dev")
    with pytest.raises(SettingsError, match="unknown field 'colour'"):
        load({**REQUIRED, "clients": {"alice": {field: None, "colour": None}}}, "dev")


def test_allowed_values_follow_the_validation_constants() -> None:
    """The allowed ranges shown are the ones `load` enforces: the edges pass, one past fails."""
    page = (ROOT / SETTINGS_PAGE).read_text()
    for key in ("maxAttempts", "maxBodyBytes", "cacheTtl"):
        low, high = map(int, re.findall(r"\d+", SETTING_FORMS[key].allowed))
        assert f"**Allowed:** {SETTING_FORMS[key].allowed}" in page
        for edge, beyond in ((low, low - 1), (high, high + 1)):
            load({**REQUIRED, key: edge}, "dev")
            with pytest.raises(SettingsError, match=f"aigw:{key}: got {beyond};"):
                load({**REQUIRED, key: beyond}, "dev")


def test_cli_reference_lists_every_command_and_option() -> None:
    """Each subcommand has a section and each of its options a row."""
    page = cli_reference(build_parser())
    for command in ("render", "dev", "doctor", "usage", "smoke", "keys", "clients"):
        assert f"## `aigw {command}`" in page
    assert "| `--upstream URL` |" in page
    assert "| `--since SINCE` |" in page


@pytest.mark.parametrize("key", sorted(SCALAR_SETTINGS))
def test_pulumi_yaml_declares_each_scalar_setting_as_the_code_does(key: str) -> None:
    """Pulumi.yaml's entry (type, description, default) is the declaration's, as parsed YAML."""
    assert declared_settings(PROJECT)[key] == SCALAR_SETTINGS[key].declaration()


def test_a_changed_declaration_rewrites_pulumi_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator writes Pulumi.yaml's block from the declarations: a new default shows."""
    changed = dataclasses.replace(SCALAR_SETTINGS["gatewayMaxAttempts"], default=2)
    monkeypatch.setattr(
        "infra.reference.SCALAR_SETTINGS", {**SCALAR_SETTINGS, "gatewayMaxAttempts": changed}
    )
    text = with_pulumi_yaml_block((ROOT / PROJECT_FILE).read_text())
    assert yaml.safe_load(text)["config"]["aigw:gatewayMaxAttempts"]["default"] == 2
    assert text.count(PULUMI_YAML_BLOCK[0]) == 1


def test_pulumi_yaml_without_its_block_markers_stops_the_generator() -> None:
    """A Pulumi.yaml that lost a marker line is an error naming the file, not a silent append."""
    text = (ROOT / PROJECT_FILE).read_text().replace(PULUMI_YAML_BLOCK[1], "")
    with pytest.raises(ReferenceError, match=r"Pulumi\.yaml needs the lines"):
        with_pulumi_yaml_block(text)


@pytest.mark.parametrize(
    "key", [key for key, setting in SCALAR_SETTINGS.items() if setting.kind == "integer"]
)
def test_declared_bounds_are_the_ones_enforced(key: str) -> None:
    """A declared integer's edges pass and one past each fails, as the reference shows them."""
    low, high = SCALAR_SETTINGS[key].bounds
    assert f"**Allowed:** {low} to {high}" in (ROOT / SETTINGS_PAGE).read_text()
    retrying = {"gatewayMaxAttempts": 2}
    for edge, beyond in ((low, low - 1), (high, high + 1)):
        load({**REQUIRED, **retrying, key: edge}, "dev")
        with pytest.raises(SettingsError, match=f"aigw:{key}: got {beyond};"):
            load({**REQUIRED, **retrying, key: beyond}, "dev")


def test_reference_lists_every_gateway_input() -> None:
    """The settings page has a row for each `AiGateway` input decided, with its setting or why."""
    page = (ROOT / SETTINGS_PAGE).read_text()
    assert "| `retry_max_attempts` | [`gatewayMaxAttempts`](#gatewaymaxattempts) |" in page
    assert "| `guardrails` | Guardrails buffer a streamed response" in page


def test_the_errors_page_and_troubleshooting_show_every_worker_error() -> None:
    """Each code of the Worker's error table has its row on the Errors page and its line, under
    its family, on the troubleshooting page."""
    errors_page = (ROOT / ERRORS_PAGE).read_text()
    troubleshooting = (ROOT / TROUBLESHOOTING_PAGE).read_text()
    for error in WORKER_ERRORS:
        assert f"| `{error.code}` | `{error.type}` |" in errors_page, error.code
        assert f" {error.code}`**: {error.when}." in troubleshooting, error.code
