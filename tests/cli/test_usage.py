"""`aigw usage` against the loopback Cloudflare API: paging, grouping, windows and output."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.cli.main import main
from tests.cloudflare_fake import ACCOUNT_ID, GATEWAY_ID, FakeCloudflare

TARGET = ["--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID, "--source", "logs"]
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WINDOW = ["--since", "2026-11-28T00:00:00Z", "--until", "2026-11-29T00:00:00Z"]
FIELDS = ["group", "requests", "errors", "cached", "tokens_in", "tokens_out", "cost"]


def usage_json(capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    """Run `aigw usage --json` in-process and decode what it printed."""
    assert main(["usage", "--json", *TARGET, *options]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def seed_mixed(fake: FakeCloudflare) -> None:
    """105 logs over three pages of 50, with figures simple enough to add up by hand."""
    for i in range(60):
        # gpt-4o-mini: 60 requests, 10 in / 5 out, $0.25 each; every tenth one a 429.
        fake.add_log(
            NOON + timedelta(seconds=i),
            model="gpt-4o-mini",
            tokens_in=10,
            tokens_out=5,
            cost=0.25,
            success=i % 10 != 0,
            status_code=429 if i % 10 == 0 else 200,
            client="laptop",
            key="1a2b3c4d",
        )
    for i in range(45):
        # claude-sonnet-4: 45 requests, 100 in / 20 out, $0.50 each; a third served from cache.
        fake.add_log(
            NOON + timedelta(minutes=5, seconds=i),
            model="claude-sonnet-4",
            provider="anthropic",
            tokens_in=100,
            tokens_out=20,
            cost=0.5,
            cached=i % 3 == 0,
            client="ci",
            key="9f8e7d6c",
        )


def test_usage_totals_match_hand_computed_figures_over_several_pages(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """All three pages are read, each once, and the totals are the sums worked out by hand."""
    seed_mixed(cloudflare_api)
    document = usage_json(capsys, *WINDOW)
    assert document["total"] == {
        "group": "total",
        "requests": 105,
        "errors": 6,
        "cached": 15,
        "tokens_in": 60 * 10 + 45 * 100,
        "tokens_out": 60 * 5 + 45 * 20,
        "cost": 60 * 0.25 + 45 * 0.5,
    }
    assert [(call["page"], call["per_page"]) for call in cloudflare_api.list_calls()] == [
        ("1", "50"),
        ("2", "50"),
        ("3", "50"),
    ]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("model", {"gpt-4o-mini": (60, 6, 0), "claude-sonnet-4": (45, 0, 15)}),
        ("provider", {"openai": (60, 6, 0), "anthropic": (45, 0, 15)}),
        ("client", {"laptop": (60, 6, 0), "ci": (45, 0, 15)}),
        ("key", {"1a2b3c4d": (60, 6, 0), "9f8e7d6c": (45, 0, 15)}),
        ("status", {"200": (99, 0, 15), "429": (6, 6, 0)}),
    ],
)
def test_usage_groups_by_every_dimension(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    by: str,
    expected: dict[str, tuple[int, int, int]],
) -> None:
    """Each `--by` splits the same logs into the groups a user would expect, busiest first."""
    seed_mixed(cloudflare_api)
    document = usage_json(capsys, *WINDOW, "--by", by)
    rows = document["rows"]
    assert isinstance(rows, list)
    assert {
        row["group"]: (row["requests"], row["errors"], row["cached"]) for row in rows
    } == expected
    assert [row["requests"] for row in rows] == sorted((r["requests"] for r in rows), reverse=True)


def test_usage_json_has_exactly_the_documented_shape(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--json` prints `rows` and `total` with the documented fields and nothing else."""
    seed_mixed(cloudflare_api)
    document = usage_json(capsys, *WINDOW)
    assert list(document) == ["rows", "total"]
    rows = document["rows"]
    assert isinstance(rows, list) and len(rows) == 2
    for row in [*rows, document["total"]]:
        assert list(row) == FIELDS
        assert all(isinstance(row[name], int) for name in FIELDS[1:6])
        assert isinstance(row["cost"], float)
    assert rows[0] == {
        "group": "gpt-4o-mini",
        "requests": 60,
        "errors": 6,
        "cached": 0,
        "tokens_in": 600,
        "tokens_out": 300,
        "cost": 15.0,
    }


@pytest.mark.parametrize(
    ("offset", "counted"),
    [
        (timedelta(0), True),
        (timedelta(hours=2), True),
        (-timedelta(seconds=1), False),
        (timedelta(hours=2, seconds=1), False),
        (timedelta(milliseconds=-1), False),
        (timedelta(hours=2, milliseconds=1), False),
    ],
    ids=["at-start", "at-end", "second-before", "second-after", "ms-before", "ms-after"],
)
def test_usage_window_includes_both_ends_and_nothing_outside(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    offset: timedelta,
    counted: bool,
) -> None:
    """A log exactly at `--since` or `--until` counts; one just outside does not."""
    cloudflare_api.add_log(NOON + offset, tokens_in=7)
    document = usage_json(
        capsys, "--since", "2026-11-28T12:00:00Z", "--until", "2026-11-28T14:00:00+00:00"
    )
    assert document["total"]["requests"] == (1 if counted else 0)
    assert document["total"]["tokens_in"] == (7 if counted else 0)


def test_usage_asks_the_api_for_the_exact_window(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A relative `--since` counts back from `--until`, and both reach the API as UTC times."""
    usage_json(capsys, "--since", "7d", "--until", "2026-11-28T14:30:00+02:00")
    (call,) = cloudflare_api.list_calls()
    assert call["start_date"] == "2026-11-21T12:30:00.000Z"
    assert call["end_date"] == "2026-11-28T12:30:00.000Z"
    assert call["order_by"] == "created_at"


def test_usage_empty_window_prints_an_empty_table(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """No logs in the window is an answer, not an error: header, zero total, exit 0."""
    cloudflare_api.add_log(NOON - timedelta(days=3))
    assert main(["usage", *TARGET, *WINDOW, "--by", "client"]) == 0
    out = capsys.readouterr().out
    assert "client" in out and "requests" in out and "tokens in" in out
    assert "no requests were logged in this window" in out
    assert "laptop" not in out
    assert usage_json(capsys, *WINDOW)["rows"] == []


def test_usage_table_shows_groups_and_the_total(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """The human view lists each group with its cached share, and a total line."""
    seed_mixed(cloudflare_api)
    assert main(["usage", *TARGET, *WINDOW]) == 0
    lines = capsys.readouterr().out.splitlines()
    mini = next(line for line in lines if "gpt-4o-mini" in line)
    assert "60" in mini and "$15.00" in mini
    claude = next(line for line in lines if "claude-sonnet-4" in line)
    assert "15 (33%)" in claude
    total = next(line for line in lines if "total" in line and "$" in line)
    assert "105" in total and "5,100" in total and "$37.50" in total


def test_usage_logs_without_worker_metadata_group_as_unknown(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Requests that did not come through the Worker have no client or key and say so."""
    cloudflare_api.add_log(NOON, client=None, key=None)
    cloudflare_api.add_log(NOON, client="laptop", key="1a2b3c4d")
    rows = usage_json(capsys, *WINDOW, "--by", "key")["rows"]
    assert {row["group"] for row in rows} == {"(unknown)", "1a2b3c4d"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["--until", "noon"], "--until 'noon' is not a time"),
        (
            ["--since", "2026-11-29T00:00:00Z", "--until", "2026-11-28T00:00:00Z"],
            "the window starts after it ends",
        ),
    ],
)
def test_usage_refuses_a_bad_window(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    """A window that cannot be read is one clear error, before any API call."""
    assert main(["usage", *TARGET, *options]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert cloudflare_api.calls == []


@pytest.mark.parametrize(("json_mode", "shown"), [(False, True), (True, False)])
def test_usage_progress_shows_on_a_terminal_only_without_json(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    json_mode: bool,
    shown: bool,
) -> None:
    """The progress bar goes to a terminal's stderr, never into --json output or a pipe."""
    seed_mixed(cloudflare_api)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    argv = ["usage", *TARGET, *WINDOW] + (["--json"] if json_mode else [])
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert ("reading logs" in captured.err) is shown
    assert "reading logs" not in captured.out
