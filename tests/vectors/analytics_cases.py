"""The cases of tests/vectors/analytics/points.json, for the model's and the Worker's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from infra.worker.analytics import Event

VECTORS = json.loads(
    (Path(__file__).parent / "analytics" / "points.json").read_text(encoding="utf-8")
)
OUTCOMES: list[dict[str, Any]] = VECTORS["outcomes"]
POINTS: list[dict[str, Any]] = VECTORS["points"]
LONG: dict[str, Any] = VECTORS["long"]
BODIES: list[dict[str, Any]] = VECTORS["bodies"]


def body_of(case: dict[str, Any]) -> str:
    """A body case's text: its prefix, `pad` x's, its suffix."""
    return str(case["prefix"]) + "x" * int(case["pad"]) + str(case["suffix"])


def event_of(raw: dict[str, Any]) -> Event:
    """A vector's event as the model's `Event`."""
    return Event(
        kind=raw["kind"],
        client=raw["client"],
        provider=raw["provider"],
        model=raw["model"],
        key_id=raw["keyId"],
        outcome=raw["outcome"],
        path=raw["path"],
        status=raw["status"],
        attempts=raw["attempts"],
        first_byte_ms=raw["firstByteMs"],
        cached=raw["cached"],
        upstream_status=raw["upstreamStatus"],
    )


def long_event() -> dict[str, Any]:
    """The first point's event with a model name longer than a blob may be."""
    return cast(dict[str, Any], POINTS[0]["event"]) | {"model": LONG["character"] * LONG["repeat"]}
