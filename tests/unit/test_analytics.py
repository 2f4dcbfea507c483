"""The model of the Worker's Analytics Engine data points against the shared vectors."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from infra.worker import analytics
from infra.worker.body_models import top_level_model
from infra.worker.errors import WORKER_ERRORS
from tests.vectors.analytics_cases import (
    BODIES,
    LONG,
    OUTCOMES,
    POINTS,
    body_of,
    event_of,
    long_event,
)


@pytest.mark.parametrize("case", OUTCOMES, ids=lambda case: f"{case['status']}-{case['code']}")
def test_outcome_of_each_answer(case: dict[str, Any]) -> None:
    """Every answer, the Worker's own and the upstream's, gets the vector's outcome."""
    assert analytics.outcome(case["status"], case["code"], case["gateway"]) == case["outcome"]


@pytest.mark.parametrize("case", POINTS, ids=lambda case: case["name"])
def test_data_point_of_each_event(case: dict[str, Any]) -> None:
    """An event becomes the vector's data point, column for column."""
    assert analytics.data_point(event_of(case["event"])).as_json() == case["point"]


def test_blobs_are_bounded() -> None:
    """A model name longer than a blob may be is cut, so the point stays within its limits."""
    point = analytics.data_point(event_of(long_event()))
    assert point.blobs[analytics.BLOBS.index("model")] == LONG["character"] * LONG["kept"]
    assert sum(len(blob.encode()) for blob in point.blobs) <= 16 * 1024


def test_every_outcome_has_a_vector() -> None:
    """The vectors name every outcome the model knows, so none goes untested in the Worker."""
    assert {case["outcome"] for case in OUTCOMES} == set(get_args(analytics.Outcome))


def test_columns_are_named_in_one_place() -> None:
    """The reports find each field at the column the Worker writes it to."""
    assert analytics.column("schema") == "blob1"
    assert analytics.column("keyId") == "blob6"
    assert analytics.column("upstreamStatus") == "double5"
    with pytest.raises(KeyError):
        analytics.column("content")


@pytest.mark.parametrize("case", BODIES, ids=lambda case: case["name"])
def test_model_a_body_names(case: dict[str, Any]) -> None:
    """A data point's model is the body's top-level `model`, found without parsing the body (the
    routing read, `body_models.top_level_model`), or none."""
    assert top_level_model(body_of(case).encode()) == case["model"]


def test_every_error_of_the_worker_has_its_outcome() -> None:
    """Each code of the Worker's error table is mapped, so a new code cannot hide as a
    `worker_error` in the reports unnoticed."""
    assert set(analytics.OWN_OUTCOMES) == {error.code for error in WORKER_ERRORS}
