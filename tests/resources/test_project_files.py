"""Pulumi.yaml declares every setting the program reads; Pulumi.example.yaml is a valid stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.setting_forms import KNOWN_KEYS, SECRET_KEYS
from infra.settings import load

ROOT = Path(__file__).resolve().parents[2]
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
EXAMPLE = yaml.safe_load((ROOT / "Pulumi.example.yaml").read_text())
DECLARED: dict[str, dict[str, Any]] = {
    key.removeprefix("aigw:"): value for key, value in PROJECT["config"].items()
}
REQUIRED = {"accountId", "providerKeys"}
ACCOUNT = "0123456789abcdef0123456789abcdef"


def as_pulumi_passes_it(value: object) -> str:
    """Config values reach the program as text: scalars formatted, lists and objects as JSON."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def test_project_is_python_with_its_own_virtualenv() -> None:
    """`pulumi install` creates .venv with pip from requirements.txt."""
    assert PROJECT["name"] == "aigw"
    assert PROJECT["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }


def test_state_defaults_to_a_local_file_backend() -> None:
    """State needs no account: the project points at ~/.pulumi unless PULUMI_BACKEND_URL is set."""
    assert PROJECT["backend"] == {"url": "file://~"}


def test_every_setting_is_declared_once_with_a_description() -> None:
    """The config block declares exactly the keys the program knows, each described."""
    assert sorted(DECLARED) == sorted(KNOWN_KEYS)
    assert not [key for key, spec in DECLARED.items() if len(spec.get("description", "")) < 20]


@pytest.mark.parametrize("key", sorted(KNOWN_KEYS))
def test_only_required_settings_lack_a_default(key: str) -> None:
    """The Pulumi CLI refuses a stack that lacks a declared key without default, so only the
    required ones go without."""
    assert ("default" in DECLARED[key]) == (key not in REQUIRED)


def test_secret_settings_are_marked_and_never_have_a_value() -> None:
    """providerKeys is marked secret; optional secrets default to "" (unset), never to a value,
    and each secret says so in its description."""
    assert DECLARED["providerKeys"].get("secret") is True
    for key in SECRET_KEYS:
        assert DECLARED[key].get("default", "") == "", key
        assert DECLARED[key]["description"].lower().startswith(("secret", "required secret")), key


def test_declared_defaults_are_the_program_defaults() -> None:
    """Running with Pulumi.yaml's defaults gives the same settings as giving no value at all."""
    required = {"accountId": ACCOUNT, "providerKeys": '{"openai": ["sk-test-a"]}'}
    with_defaults = {
        key: as_pulumi_passes_it(spec["default"])
        for key, spec in DECLARED.items()
        if "default" in spec
    }
    # __main__.py treats "" as unset, as Pulumi.yaml's comments promise.
    with_defaults = {key: value for key, value in with_defaults.items() if value != ""}
    assert load(required | with_defaults, "dev") == load(required, "dev")


@pytest.mark.parametrize(
    ("kind", "python_type"), [("integer", int), ("boolean", bool), ("string", str), ("array", list)]
)
def test_typed_defaults_match_their_type(kind: str, python_type: type) -> None:
    """Each typed key's default is of its declared type (the CLI checks stack values the same)."""
    typed = {
        key: spec
        for key, spec in DECLARED.items()
        if spec.get("type") == kind and "default" in spec
    }
    assert typed, kind
    for key, spec in typed.items():
        assert isinstance(spec["default"], python_type) or spec["default"] == "", key


def test_example_stack_sets_every_setting() -> None:
    """Pulumi.example.yaml shows every key."""
    assert sorted(key.removeprefix("aigw:") for key in EXAMPLE["config"]) == sorted(KNOWN_KEYS)


def fill_placeholders(value: Any, counter: list[int]) -> Any:
    """Replace `secure:` placeholders by distinct fake secrets, as decryption would."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        counter[0] += 1
        return f"fake-secret-value-{counter[0]:04d}"
    if isinstance(value, dict):
        return {k: fill_placeholders(v, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(v, counter) for v in value]
    return value


def test_example_stack_is_valid() -> None:
    """The example configuration, secrets filled in, passes validation as shown."""
    counter = [0]
    raw = {
        key.removeprefix("aigw:"): as_pulumi_passes_it(fill_placeholders(value, counter))
        for key, value in EXAMPLE["config"].items()
    }
    settings, secrets = load(raw, "example")
    assert settings.custom_domain is not None
    assert settings.custom_domain.hostname == "ai.example.com"
    assert settings.rate_limit is not None and settings.rate_limit.technique == "sliding"
    assert settings.providers == ("openai", "anthropic")
    assert set(secrets.client_tokens) == {"laptop", "ci"} and len(secrets.client_tokens["ci"]) == 2
    assert set(settings.clients) == {"alice", "ci", "*"} and settings.budget is not None
    assert secrets.gateway_token is not None
