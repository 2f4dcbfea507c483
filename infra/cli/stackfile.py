"""A stack's `Pulumi.<stack>.yaml`: which one to read, its `aigw:` entries and settings."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from infra.providers import PROVIDERS
from infra.setting_forms import SECRET_KEYS
from infra.settings import NAMESPACE, Settings, SettingsError, load

STACK_ENV = "PULUMI_STACK"
"""The stack when none is given, as the Pulumi CLI reads it."""
_PREFIX, _SUFFIX = "Pulumi.", ".yaml"
"""A stack file is named `Pulumi.<stack>.yaml`."""
EXAMPLE_FILE = "Pulumi.example.yaml"
"""Documents the settings; it is not anyone's stack."""
# Settings needs a key for each configured provider; the real ones are encrypted in the file.
PLACEHOLDER_KEY = "placeholder"


class StackFileError(Exception):
    """A stack file that cannot be chosen, read or validated; the message says which and why."""


class NoStackFileError(StackFileError):
    """The stack asked for (`--stack` or `$PULUMI_STACK`) has no file."""


def find_stack_file(stack: str | None, root: Path) -> Path | None:
    """`--stack`, else `$PULUMI_STACK`, else the only stack file in `root`; or None."""
    chosen = stack or os.environ.get(STACK_ENV) or None
    if chosen is not None:
        path = root / stack_file_name(chosen)
        if not path.is_file():
            raise NoStackFileError(
                f"stack {chosen!r} has no configuration file {path.name} in {root}"
            )
        return path
    candidates = sorted(p for p in root.glob(stack_file_name("*")) if p.name != EXAMPLE_FILE)
    if len(candidates) > 1:
        names = ", ".join(stack_name(path) for path in candidates)
        raise StackFileError(f"several stacks ({names}); choose one with --stack")
    return candidates[0] if candidates else None


def stack_file_name(stack: str) -> str:
    """`Pulumi.<stack>.yaml`."""
    return f"{_PREFIX}{stack}{_SUFFIX}"


def stack_name(path: Path) -> str:
    """The stack whose file `path` is: `dev` for `Pulumi.dev.yaml`."""
    return path.name.removeprefix(_PREFIX).removesuffix(_SUFFIX)


def read_stack_config(path: Path) -> dict[str, object]:
    """The `aigw:` entries of a stack file, without the namespace; secret ones stay encrypted."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise StackFileError(f"cannot read {path.name}: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        # PyYAML's own message quotes the offending line, which may hold a plain-text secret.
        raise StackFileError(f"{path.name} is not valid YAML{_where(error)}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: `config` is not a mapping of settings")
    prefix = f"{NAMESPACE}:"
    raw = {
        str(key).removeprefix(prefix): value
        for key, value in config.items()
        if str(key).startswith(prefix)
    }
    for key, value in raw.items():
        if is_encrypted(value) and key not in SECRET_KEYS:
            raise StackFileError(
                f"{path.name}: {prefix}{key} is stored encrypted; aigw reads it as plain text "
                f"(pulumi config set {prefix}{key} <value>)"
            )
    return raw


def _where(error: yaml.YAMLError) -> str:
    """` at line N` for a YAML error that knows its position, else nothing."""
    mark = getattr(error, "problem_mark", None)
    return f" at line {mark.line + 1}" if mark is not None else ""


def is_encrypted(value: object) -> bool:
    """Whether a stack file value is one Pulumi secret (`{secure: …}`)."""
    return isinstance(value, dict) and set(value) == {"secure"}


def load_settings(config: Mapping[str, object], stack: str, providers: Iterable[str]) -> Settings:
    """The non-secret settings in `config`, validated as `pulumi up` would.

    The secrets are encrypted in the file and not needed; a placeholder key for each of
    `providers` lets the shared validation check every other setting.
    """
    raw = {key: value for key, value in config.items() if key not in SECRET_KEYS}
    raw["providerKeys"] = {slug: [PLACEHOLDER_KEY] for slug in providers}
    try:
        settings, _ = load(raw, stack)
    except SettingsError as error:
        raise StackFileError(f"{stack_file_name(stack)}: {error}") from None
    return settings


def configured_providers(config: Mapping[str, object]) -> tuple[str, ...]:
    """The providers under `aigw:providerKeys` when stored per provider (`--path`); every known
    provider when the object is one secret, so that no client policy fails on what is unreadable."""
    keys = config.get("providerKeys")
    if isinstance(keys, dict) and keys and not is_encrypted(keys):
        return tuple(str(slug) for slug in keys)
    return tuple(PROVIDERS)
