"""`aigw keys` against the loopback Cloudflare API: counts, verdicts, window, table, JSON, chart."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cloudflare.types.ai_gateway import LogListResponse

from infra.cli import keys, keys_chart
from infra.cli.main import main
from tests.cli.conftest import fails
from tests.cloudflare_fake import ACCOUNT_ID, API_TOKEN, GATEWAY_ID, FakeCloudflare

TARGET = ["--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID, "--source", "logs"]
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WINDOW = ["--since", "2026-11-28T00:00:00Z", "--until", "2026-11-29T00:00:00Z"]
FIELDS = [
    "provider",
    "keyId",
    "requests",
    "ok",
    "rateLimited",
    "refused",
    "serverErrors",
    "lastStatus",
    "lastSeen",
    "verdict",
    "refusedOn",
    "place",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def log(fake: FakeCloudflare, at: datetime, status: int | None, **fields: Any) -> None:
    """One logged answer with this status (None: a log that carries no status at all)."""
    entry = fake.add_log(
        at, status_code=status or 0, success=status is not None and 200 <= status < 300, **fields
    )
    if status is None:
        entry["status_code"] = None
        entry["success"] = fields.get("success", True)


def run(capsys: pytest.CaptureFixture[str], *options: str) -> str:
    """Run `aigw keys` in-process; what it printed (and never the API token)."""
    assert main(["keys", *TARGET, *options]) == 0
    captured = capsys.readouterr()
    assert API_TOKEN not in captured.out and API_TOKEN not in captured.err
    return captured.out


def keys_json(capsys: pytest.CaptureFixture[str], *options: str) -> list[dict[str, Any]]:
    """Run `aigw keys --json` and decode its rows."""
    document = json.loads(run(capsys, "--json", *options))
    assert list(document) == ["keys"]
    rows: list[dict[str, Any]] = document["keys"]
    return rows


def seed_pool(fake: FakeCloudflare) -> None:
    """122 logs over three pages of 50: three keys with figures simple enough to count by hand."""
    start = NOON - timedelta(hours=4)
    for i in range(60):
        # openai 1a2b3c4d, 08:00-09:58: every tenth a 429, four 500s, the rest (and the last) 200.
        status = 429 if i % 10 == 0 else 500 if i % 15 == 7 else 200
        log(fake, start + timedelta(minutes=2 * i), status, key="1a2b3c4d")
    for i in range(30):
        # openai 5e6f7a8b, 10:00-10:29: twenty 200s, then refused ten times (revoked).
        log(fake, NOON - timedelta(hours=2, minutes=-i), 200 if i < 20 else 401, key="5e6f7a8b")
    for i in range(25):
        # anthropic 9f8e7d6c, 11:00-11:24: one bad request, every fifth a 429 (the last one too).
        status = 400 if i == 0 else 429 if i % 5 == 4 else 200
        log(
            fake,
            NOON - timedelta(hours=1, minutes=-i),
            status,
            provider="anthropic",
            model="claude-sonnet-4",
            key="9f8e7d6c",
        )
    for i in range(7):
        # Refused by the gateway itself, or sent by something other than the Worker: no key id.
        log(fake, NOON - timedelta(minutes=30 - i), 429, client=None, key=None)


REPLACE_ROW = {
    "provider": "openai",
    "keyId": "5e6f7a8b",
    "requests": 30,
    "ok": 20,
    "rateLimited": 0,
    "refused": 10,
    "serverErrors": 0,
    "lastStatus": 401,
    "lastSeen": "2026-11-28T10:29:00.000Z",
    "verdict": "replace",
    "refusedOn": [
        {"model": "gpt-4o-mini", "path": "chat/completions", "since": "2026-11-28T10:20:00.000Z"}
    ],
    "place": None,
}
RATE_LIMITED_ROW = {
    "provider": "anthropic",
    "keyId": "9f8e7d6c",
    "requests": 25,
    "ok": 19,
    "rateLimited": 5,
    "refused": 0,
    "serverErrors": 0,
    "lastStatus": 429,
    "lastSeen": "2026-11-28T11:24:00.000Z",
    "verdict": "rate-limited",
    "refusedOn": [],
    "place": None,
}
HEALTHY_ROW = {
    "provider": "openai",
    "keyId": "1a2b3c4d",
    "requests": 60,
    "ok": 50,
    "rateLimited": 6,
    "refused": 0,
    "serverErrors": 4,
    "lastStatus": 200,
    "lastSeen": "2026-11-28T09:58:00.000Z",
    "verdict": "healthy",
    "refusedOn": [],
    "place": None,
}


def test_keys_counts_match_hand_computed_figures_over_several_pages(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """All three pages are read once, and each key's figures are the ones counted by hand."""
    seed_pool(cloudflare_api)
    rows = keys_json(capsys, *WINDOW)
    assert rows == [REPLACE_ROW, RATE_LIMITED_ROW, HEALTHY_ROW]
    assert [(call["page"], call["per_page"]) for call in cloudflare_api.list_calls()] == [
        ("1", "50"),
        ("2", "50"),
        ("3", "50"),
    ]


def test_keys_json_has_exactly_the_documented_shape(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each row has the documented fields in order, counts as integers, times as UTC stamps."""
    seed_pool(cloudflare_api)
    for row in keys_json(capsys, *WINDOW):
        assert list(row) == FIELDS
        assert all(type(row[name]) is int for name in FIELDS[2:8])
        assert datetime.fromisoformat(row["lastSeen"]).tzinfo == UTC
        assert row["lastSeen"].endswith("Z")


def test_keys_never_counts_a_log_without_a_key_id_as_a_key(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs that name no key are left out of every row and reported once below the table."""
    seed_pool(cloudflare_api)
    assert all(row["keyId"] != "(unknown)" for row in keys_json(capsys, *WINDOW))
    out = run(capsys, *WINDOW)
    assert "7 logged request(s) named no key and are not counted above" in out
    assert "(unknown)" in out  # only in that sentence, which says where to see them
    assert sum(line.count("(unknown)") for line in out.splitlines()) == 1


@pytest.mark.parametrize(
    ("statuses", "verdict"),
    [
        ([200], "healthy"),
        ([200, 401], "replace"),
        ([200, 200, 403], "replace"),
        ([402], "replace"),
        ([401, 200], "healthy"),
        ([200, 401, 429], "replace"),
        ([200, 429], "rate-limited"),
        ([429, 200], "healthy"),
        ([200, 503], "failing"),
        ([200, 400], "healthy"),
        ([400, 404], "unknown"),
        ([None], "healthy"),
    ],
    ids=[
        "only-success",
        "refused-after-success",
        "forbidden-after-successes",
        "payment-required-never-succeeded",
        "success-after-refusal",
        "rate-limited-after-refusal",
        "rate-limited-after-success",
        "success-after-rate-limit",
        "server-error-after-success",
        "bad-request-after-success",
        "only-bad-requests",
        "no-status-but-success",
    ],
)
def test_keys_verdict_follows_the_latest_answer_that_says_something(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    statuses: list[int | None],
    verdict: str,
) -> None:
    """A refusal newer than the last success means replace; 429 or 5xx since it are named too."""
    for minute, status in enumerate(statuses):
        log(cloudflare_api, NOON + timedelta(minutes=minute), status)
    (row,) = keys_json(capsys, *WINDOW)
    assert row["verdict"] == verdict
    assert row["lastStatus"] == statuses[-1]


def project_key_without_gpt_4o(fake: FakeCloudflare, last: int) -> None:
    """An OpenAI project key without access to one model: gpt-4o-mini answers 200 all day,
    gpt-4o 403 each time it is asked; the window's last answer is `last` (200 or 403)."""
    for minute in range(0, 60, 10):
        log(fake, NOON + timedelta(minutes=minute), 200, model="gpt-4o-mini")
        log(fake, NOON + timedelta(minutes=minute + 5), 403, model="gpt-4o")
    model = "gpt-4o-mini" if last == 200 else "gpt-4o"
    log(fake, NOON + timedelta(minutes=70), last, model=model)


@pytest.mark.parametrize("last", [200, 403], ids=["last-answer-a-success", "last-answer-refused"])
def test_keys_refused_on_one_model_only_is_partial_and_names_it(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], last: int
) -> None:
    """A key refused on one model while it keeps succeeding on another is `partial`, whichever
    answer came last (it was `healthy` or `replace` by that), and the row names the model."""
    project_key_without_gpt_4o(cloudflare_api, last)
    (row,) = keys_json(capsys, *WINDOW)
    assert row["verdict"] == "partial"
    assert row["refusedOn"] == [
        {"model": "gpt-4o", "path": "chat/completions", "since": "2026-11-28T12:05:00.000Z"}
    ]


def test_keys_refused_on_one_path_only_is_partial() -> None:
    """Refused on an endpoint (files) while chat completions succeed, before and after."""
    report = keys.KeysReport()
    for minute, status, path in [
        (0, 200, "chat/completions"),
        (1, 401, "files"),
        (2, 200, "chat/completions"),
    ]:
        report.add(logged(NOON + timedelta(minutes=minute), status, path=path))
    (key,) = report.rows()
    assert key.verdict == "partial"
    assert [str(scope) for scope in key.refused_on] == ["gpt-4o-mini on files"]


@pytest.mark.parametrize(
    "answers",
    [
        # Revoked at 12:30: both models refused from then on.
        [(0, 200, "a"), (10, 200, "b"), (30, 401, "a"), (40, 401, "b")],
        # Revoked at 12:30, and only model a asked since: b's success is older than the refusal.
        [(0, 200, "a"), (10, 200, "b"), (30, 401, "a"), (40, 401, "a")],
    ],
    ids=["every-model-refused", "one-model-asked-since"],
)
def test_keys_refused_everywhere_since_a_moment_is_replace(
    answers: list[tuple[int, int, str]],
) -> None:
    """A revoked key is `replace`, not `partial`: nothing has succeeded since its refusals began."""
    report = keys.KeysReport()
    for minute, status, model in answers:
        report.add(logged(NOON + timedelta(minutes=minute), status, model=model))
    (key,) = report.rows()
    assert key.verdict == "replace"


def test_keys_refused_then_served_on_the_same_model_is_healthy() -> None:
    """A refusal that the same model's later success undoes leaves nothing refused."""
    report = keys.KeysReport()
    for minute, status, model in [(0, 403, "gpt-4o"), (1, 200, "gpt-4o-mini"), (2, 200, "gpt-4o")]:
        report.add(logged(NOON + timedelta(minutes=minute), status, model=model))
    (key,) = report.rows()
    assert (key.verdict, key.refused_on) == ("healthy", {})


def test_keys_table_says_what_a_partial_key_is_refused_on(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table lists a partial key among the bad ones and says, under it, what is refused."""
    project_key_without_gpt_4o(cloudflare_api, 200)
    out = run(capsys, *WINDOW)
    assert re.search(r"openai\s+1a2b3c4d\s+partial\s+13\s+7\s+0\s+6\s+0\s+200", out), out
    assert (
        "openai 1a2b3c4d is refused on gpt-4o on chat/completions since 11-28 12:05Z, and "
        "succeeds elsewhere" in " ".join(out.split())
    )


def logged(
    at: datetime, status: int, *, model: str = "gpt-4o-mini", path: str = "chat/completions"
) -> LogListResponse:
    """A log entry as the SDK returns it, for the tests that feed a report directly."""
    return LogListResponse(
        id=f"log{at:%H%M%S}",
        cached=False,
        created_at=at,
        duration=100,
        model=model,
        path=path,
        provider="openai",
        success=200 <= status < 300,
        status_code=status,
        metadata=json.dumps({"client": "laptop", "keyId": "1a2b3c4d"}),
    )


def test_keys_verdict_reads_times_not_the_order_logs_arrive_in() -> None:
    """Logs read out of time order still give the newest status and the verdict of the newest."""
    report = keys.KeysReport()
    for minute, status in [(5, 200), (3, 401), (1, 200)]:
        report.add(logged(NOON + timedelta(minutes=minute), status))
    (key,) = report.rows()
    row = key.as_json()
    assert (row["verdict"], row["lastStatus"]) == ("healthy", 200)
    assert row["lastSeen"] == "2026-11-28T12:05:00.000Z"


def test_keys_chart_hours_are_utc_whatever_offset_a_log_carries() -> None:
    """A log stamped 12:45+05:30 is drawn in the 07:00 UTC hour, with the others of that hour."""
    report = keys.KeysReport()
    india = timezone(timedelta(hours=5, minutes=30))
    report.add(logged(datetime(2026, 11, 28, 12, 45, tzinfo=india), 401))
    report.add(logged(datetime(2026, 11, 28, 7, 50, tzinfo=UTC), 200))
    (key,) = report.rows()
    assert key.hourly == {datetime(2026, 11, 28, 7, tzinfo=UTC): {"refused": 1, "ok": 1}}


@pytest.mark.parametrize(
    ("offset", "counted"),
    [
        (timedelta(0), True),
        (timedelta(milliseconds=1), True),
        (timedelta(milliseconds=-1), False),
        (timedelta(seconds=-1), False),
    ],
    ids=["at-since", "ms-inside", "ms-outside", "second-outside"],
)
@pytest.mark.parametrize("since", ["2026-11-28T12:00:00Z", "2h"], ids=["iso", "relative"])
def test_keys_window_starts_exactly_at_since(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    offset: timedelta,
    counted: bool,
    since: str,
) -> None:
    """A log at `--since` or just after it counts; one a millisecond before it does not."""
    log(cloudflare_api, NOON + offset, 401, key="0badc0de")
    log(cloudflare_api, NOON + timedelta(hours=1), 200, key="600dc0de")
    rows = keys_json(capsys, "--since", since, "--until", "2026-11-28T14:00:00Z")
    assert [row["keyId"] for row in rows] == (["0badc0de", "600dc0de"] if counted else ["600dc0de"])


def test_keys_default_window_is_the_last_24_hours(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --since, a key seen a day and ten minutes ago is gone, one seen 23h50 ago is not."""
    now = datetime.now(UTC)
    log(cloudflare_api, now - timedelta(hours=24, minutes=10), 401, key="0badc0de")
    log(cloudflare_api, now - timedelta(hours=23, minutes=50), 200, key="600dc0de")
    assert [row["keyId"] for row in keys_json(capsys)] == ["600dc0de"]
    (call,) = cloudflare_api.list_calls()
    start = datetime.fromisoformat(call["start_date"])
    end = datetime.fromisoformat(call["end_date"])
    # The end is rounded up to the API's millisecond so the window never ends early.
    assert timedelta(hours=24) <= end - start <= timedelta(hours=24, milliseconds=1)


def test_keys_empty_window_is_an_answer_not_an_error(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """No logs in the window: the table's header and a sentence, `{"keys": []}`, exit 0."""
    log(cloudflare_api, NOON - timedelta(days=3), 401, key="0badc0de")
    out = run(capsys, *WINDOW)
    assert "key" in out and "verdict" in out and "last seen" in out
    assert "no key answered in this window" in out
    assert "0badc0de" not in out
    assert keys_json(capsys, *WINDOW) == []


def test_keys_provider_option_keeps_only_that_provider(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--provider` shows that provider's keys only, and counts only its logs without a key."""
    seed_pool(cloudflare_api)
    assert keys_json(capsys, *WINDOW, "--provider", "anthropic") == [RATE_LIMITED_ROW]
    assert keys_json(capsys, *WINDOW, "--provider", "openai") == [REPLACE_ROW, HEALTHY_ROW]
    out = run(capsys, *WINDOW, "--provider", "anthropic")
    assert "provider anthropic" in out.splitlines()[0]
    assert "named no key" not in out
    assert "5e6f7a8b" not in out and "9f8e7d6c" in out


def test_keys_unknown_provider_is_refused_by_the_parser(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider aigw does not route to is a usage error naming the choices, before any call."""
    with pytest.raises(SystemExit) as exit_info:
        main(["keys", *TARGET, "--provider", "opnai"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'opnai'" in capsys.readouterr().err
    assert cloudflare_api.calls == []


def test_keys_table_puts_keys_to_replace_first_and_in_red(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a colour terminal the worst key leads in bold red, then a rate-limited one in yellow."""
    seed_pool(cloudflare_api)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "160")
    lines = run(capsys, *WINDOW).splitlines()
    rows = [line for line in lines if "openai" in line or "anthropic" in line]
    plain = [ANSI_CODE.sub("", row).split() for row in rows]
    assert [(words[1], words[2]) for words in plain] == [
        ("5e6f7a8b", "replace"),
        ("9f8e7d6c", "rate-limited"),
        ("1a2b3c4d", "healthy"),
    ]
    bold_red, yellow, green = "\x1b[1;31m", "\x1b[33m", "\x1b[32m"
    # A bad key's whole line is coloured, its id included; a healthy key only has a green verdict.
    assert f"{bold_red}5e6f7a8b" in rows[0] and f"{bold_red}replace" in rows[0]
    assert f"{yellow}9f8e7d6c" in rows[1] and bold_red not in rows[1]
    assert f"{green}healthy" in rows[2] and "m1a2b3c4d" not in rows[2]
    assert bold_red not in rows[2] and yellow not in rows[2]


def test_keys_table_shows_each_key_with_its_counts(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plain table lists every count, the last status, when the key was last seen and its
    config entry (unknown here: no stack was given)."""
    seed_pool(cloudflare_api)
    lines = run(capsys, *WINDOW).splitlines()
    assert lines[0] == f"gateway {GATEWAY_ID}, 2026-11-28T00:00:00.000Z to 2026-11-29T00:00:00.000Z"
    revoked = next(line for line in lines if "5e6f7a8b" in line)
    assert revoked.split() == [
        "openai", "5e6f7a8b", "replace", "30", "20", "0", "10", "0", "401", "11-28", "10:29Z",
        "unknown",
    ]  # fmt: skip
    healthy = next(line for line in lines if "1a2b3c4d" in line)
    assert healthy.split()[2:9] == ["healthy", "60", "50", "6", "0", "4", "200"]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG file's header, after checking it is one."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def pixels_of(path: Path, colour: str) -> int:
    """How many pixels of the chart are this exact colour (`#rrggbb`)."""
    from matplotlib import image

    rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    pixels = (image.imread(path)[:, :, :3] * 255).round().astype(int)
    return int((pixels == rgb).all(axis=-1).sum())


def test_keys_chart_is_a_png_with_one_panel_per_key(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--chart` writes a non-empty PNG, 1000 px wide, one 170 px panel for each key."""
    seed_pool(cloudflare_api)
    chart = tmp_path / "keys.png"
    out = run(capsys, *WINDOW, "--chart", str(chart))
    assert f"chart written to {chart}" in out
    assert chart.stat().st_size > 10_000
    assert png_size(chart) == (1000, 110 + 3 * 170)
    one = tmp_path / "one.png"
    keys_json(capsys, *WINDOW, "--provider", "anthropic", "--chart", str(one))
    assert png_size(one) == (1000, 110 + 170)


def test_keys_chart_draws_refusals_in_their_colour(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A key refused for an hour shows a block of the refused colour; a healthy one shows none."""
    for minute in range(30):
        log(cloudflare_api, NOON + timedelta(minutes=minute), 200, key="600dc0de")
    healthy = tmp_path / "healthy.png"
    keys_json(capsys, *WINDOW, "--chart", str(healthy))
    for minute in range(30):
        log(cloudflare_api, NOON + timedelta(hours=3, minutes=minute), 401, key="600dc0de")
    refused = tmp_path / "refused.png"
    keys_json(capsys, *WINDOW, "--chart", str(refused))
    red = keys_chart.CLASS_COLOURS["refused"]
    # The legend's swatch is there in both; only the refused chart has a bar of that colour.
    assert pixels_of(refused, red) > pixels_of(healthy, red) + 1000
    assert pixels_of(healthy, keys_chart.CLASS_COLOURS["ok"]) > 1000


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (
            NOON - timedelta(hours=12),
            25,
            {0: "00:00\nNov 28", 3: "03:00", 12: "12:00", 21: "21:00", 24: "00:00\nNov 29"},
        ),
        (NOON + timedelta(hours=1), 3, {0: "13:00\nNov 28", 1: "14:00", 2: "15:00"}),
        (NOON - timedelta(hours=12), 7 * 24 + 1, {24 * day: f"Nov {28 + day}" for day in range(3)}),
    ],
    ids=["a-day", "three-hours", "a-week"],
)
def test_keys_chart_labels_round_hours_with_the_date_where_it_changes(
    start: datetime, hours: int, expected: dict[int, str]
) -> None:
    """The chart's time axis is labelled on round hours (or days), dated first and at 00:00."""
    ticks = keys_chart.hour_ticks([start + timedelta(hours=hour) for hour in range(hours)])
    assert {index: ticks[index] for index in expected} == expected
    assert len(ticks) <= 13


def test_keys_chart_of_an_empty_window_says_so(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With no key in the window the chart is still written, as one panel saying so."""
    chart = tmp_path / "empty.png"
    assert keys_json(capsys, *WINDOW, "--chart", str(chart)) == []
    assert png_size(chart) == (1000, 110 + 170)


def test_keys_command_does_not_import_matplotlib_until_it_draws() -> None:
    """Only a run that draws pays for importing matplotlib."""
    code = (
        "import sys; from infra.cli.main import build_parser; build_parser(); "
        "print('matplotlib' in sys.modules)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "False"


@pytest.mark.parametrize(
    ("chart", "message"),
    [
        ("keys.svg", "--chart 'keys.svg' must name a .png file"),
        ("missing/keys.png", "--chart 'missing/keys.png': the folder 'missing' does not exist"),
    ],
)
def test_keys_refuses_a_chart_it_cannot_write_before_reading_logs(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], chart: str, message: str
) -> None:
    """A chart path that cannot work is one sentence before any API call, and nothing is written."""
    err = fails(capsys, ["keys", *TARGET, "--chart", chart])
    assert message in err
    assert cloudflare_api.calls == []
    assert not Path(chart).exists()


@pytest.mark.parametrize("json_mode", [False, True], ids=["table", "json"])
def test_keys_wrong_token_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str], json_mode: bool
) -> None:
    """A token the API refuses names the variable to fix and the permission it needs."""
    cloudflare_api.token = "another-token"
    err = fails(capsys, ["keys", *TARGET, *(["--json"] if json_mode else [])])
    assert "refused the token while reading the logs of gateway 'aigw-dev'" in err
    assert "CLOUDFLARE_API_TOKEN" in err and "AI Gateway Read" in err


def test_keys_missing_token_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without CLOUDFLARE_API_TOKEN nothing is sent and the user learns what to create."""
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    err = fails(capsys, ["keys", *TARGET])
    assert "CLOUDFLARE_API_TOKEN is not set" in err
    assert cloudflare_api.calls == []


def test_keys_unknown_gateway_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs of a gateway that does not exist: the id, the account, and where the id came from."""
    err = fails(capsys, ["keys", *TARGET[:2], "--gateway-id", "aigw-prod", "--source", "logs"])
    assert f"gateway 'aigw-prod' was not found in account {ACCOUNT_ID} (HTTP 404)" in err


def test_keys_unreachable_api_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    unused_port: int,
) -> None:
    """An API nobody answers at names the address and what to check."""
    monkeypatch.setenv("CLOUDFLARE_BASE_URL", f"http://127.0.0.1:{unused_port}/client/v4")
    err = fails(capsys, ["keys", *TARGET])
    assert f"could not reach the Cloudflare API at http://127.0.0.1:{unused_port}" in err
    assert "check the network connection and CLOUDFLARE_BASE_URL" in err


def test_keys_api_error_page_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HTML error page instead of the JSON envelope is reported as such, not dumped."""
    cloudflare_api.error_page_status = 502
    err = fails(capsys, ["keys", *TARGET])
    assert "answered HTTP 502 with an error page instead of JSON" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["--since", "24"], "--since '24' is not a time"),
        (["--until", "noon"], "--until 'noon' is not a time"),
        (
            ["--since", "2026-11-29T00:00:00Z", "--until", "2026-11-28T00:00:00Z"],
            "the window starts after it ends",
        ),
    ],
)
def test_keys_refuses_a_bad_window(
    cloudflare_api: FakeCloudflare,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    """A window that cannot be read is one clear error, before any API call."""
    assert message in fails(capsys, ["keys", *TARGET, *options])
    assert cloudflare_api.calls == []


def test_keys_chart_that_cannot_be_saved_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chart path taken by a folder fails with the path and the reason, not a traceback."""
    Path("taken.png").mkdir()
    err = fails(capsys, ["keys", *TARGET, "--chart", "taken.png"])
    assert "could not write the chart to 'taken.png': Is a directory" in err


def test_the_chart_stacks_every_answer_class_in_the_tables_order() -> None:
    """The chart's classes are the report's, bottom to top in the order the table counts them."""
    assert keys_chart.CLASSES == keys.CLASSES
    assert set(keys_chart.VERDICT_COLOURS) == set(keys.VERDICTS)
