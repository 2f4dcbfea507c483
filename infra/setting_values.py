"""One raw setting value checked: the error every setting raises, numbers, switches and objects."""

from __future__ import annotations

import json
import re
from typing import NoReturn, cast

NAMESPACE = "aigw"


class SettingsError(ValueError):
    """An invalid configuration value; the message names the key, the value and what is allowed."""


def fail(key: str, given: str, allowed: str) -> NoReturn:
    """Raise the one message shape: the key, what was given, what is allowed."""
    raise SettingsError(f"{NAMESPACE}:{key}: got {given}; {allowed}")


def show(value: object) -> str:
    """A non-secret value as an error message shows it: text quoted, anything else as JSON."""
    # `default=str` so that a date YAML decoded into an object still shows.
    return json.dumps(value, default=str) if not isinstance(value, str) else repr(value)


def kind_of(value: object) -> str:
    """What kind of value a secret key held, without showing it."""
    if value == {}:
        return "an empty object"
    kind = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return kind.get(type(value), f"a {type(value).__name__}")


def boolean(key: str, value: object) -> bool:
    """`value` (a boolean or its text, as Pulumi passes it) as a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    fail(key, show(value), "expected true or false")


def whole(key: str, value: object, low: int, high: int) -> int:
    """`value` (a number or its text) as a whole number from `low` to `high`."""
    number = as_whole(value)
    if number is None or not low <= number <= high:
        fail(key, show(value), f"expected a whole number from {low} to {high}")
    return number


def object_fields(
    key: str, value: object, required: set[str], optional: set[str]
) -> dict[str, object]:
    """`value` as an object with every `required` field and none outside `optional`."""
    if not isinstance(value, dict):
        fail(key, show(value), f"expected an object with {', '.join(sorted(required | optional))}")
    missing = sorted(required - set(value))
    extra = sorted(set(value) - required - optional)
    if missing or extra:
        problem = f"missing {missing[0]!r}" if missing else f"unknown field {extra[0]!r}"
        fail(
            key,
            f"{show(value)} ({problem})",
            f"fields are {', '.join(sorted(required | optional))}",
        )
    return cast(dict[str, object], value)


def as_whole(value: object) -> int | None:
    """`value` (a number or its text) as a whole number, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None
