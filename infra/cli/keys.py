"""`aigw keys`: each pool key's health from every answer it got (the Worker's events, or with
`--source logs` the gateway's logs), as a table, JSON or a chart."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from cloudflare.types.ai_gateway import LogListResponse
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.cli import api, events, keys_chart, stackstate, usage
from infra.providers import PROVIDERS

AnswerClass = Literal["ok", "rateLimited", "refused", "serverErrors", "other"]
CLASSES: tuple[AnswerClass, ...] = get_args(AnswerClass)
REFUSALS = frozenset({401, 402, 403})
"""Statuses a provider answers when it will not take the key (invalid, revoked, unpaid)."""

Verdict = Literal["replace", "partial", "rate-limited", "failing", "unknown", "healthy"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
"""Worst first: the order of the table."""
VERDICT_STYLES: dict[Verdict, str] = {
    "replace": "bold red",
    "partial": "bold bright_red",
    "rate-limited": "yellow",
    "failing": "magenta",
    "unknown": "dim",
    "healthy": "green",
}
UNKNOWN_PLACE = "unknown"
"""The config entry of a key the deployed stack's `keyPlaces` does not name."""
TABLE_WIDTH = 160
"""The table's width when the output is not a terminal (rich would assume 80): room for every
column, the config entry included."""


def answer_class(log: LogListResponse) -> AnswerClass:
    """What a logged answer says about the key that was sent with it."""
    status = log.status_code
    if status is None:
        # Without a status the log's own success flag is all there is to go by.
        return "ok" if log.success else "other"
    return status_class(status)


def status_class(status: int) -> AnswerClass:
    """What an upstream status says about the key; 0 (no answer came) is a server error."""
    if status == 0:
        return "serverErrors"
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rateLimited"
    if status in REFUSALS:
        return "refused"
    if 500 <= status < 600:
        return "serverErrors"
    # 400, 404, 413...: the request was at fault, not the key.
    return "other"


@dataclass(frozen=True, order=True)
class Scope:
    """Where a key was used: the model and the provider path a log names."""

    model: str
    path: str

    def __str__(self) -> str:
        return f"{self.model or '(no model)'} on {self.path or '/'}"


@dataclass
class ScopeAnswers:
    """A key's successes and refusals in one scope, which say whether it is refused there."""

    latest_ok: datetime | None = None
    refusals: list[datetime] = field(default_factory=list)

    def refused_since(self) -> datetime | None:
        """When the scope's current run of refusals began (none since its latest success)."""
        since = [at for at in self.refusals if self.latest_ok is None or at > self.latest_ok]
        return min(since, default=None)


@dataclass
class KeyHealth:
    """The answers one provider key got in the window."""

    provider: str
    key_id: str
    counts: Counter[AnswerClass] = field(default_factory=Counter)
    latest: dict[AnswerClass, datetime] = field(default_factory=dict)
    """When each class of answer was last seen."""
    hourly: dict[datetime, Counter[AnswerClass]] = field(default_factory=dict)
    """Answers per class in each UTC hour, keyed by the hour's start."""
    last_status: int | None = None
    last_seen: datetime | None = None
    scopes: dict[Scope, ScopeAnswers] = field(default_factory=dict)
    """Successes and refusals by model and path: a key may be refused on some and not others."""
    place: str | None = None
    """Its entry in the deployed stack's config (`providerKeys.openai[2]`), when known."""

    def add(self, log: LogListResponse) -> None:
        """Count one logged answer."""
        kind = answer_class(log)
        moment = log.created_at
        self.seen(kind, moment, moment, log.status_code, 1, Scope(log.model or "", log.path or ""))
        hour = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        self.hourly.setdefault(hour, Counter())[kind] += 1

    def seen(
        self,
        kind: AnswerClass,
        first: datetime,
        last: datetime,
        status: int | None,
        answers: int,
        scope: Scope,
    ) -> None:
        """Count `answers` answers of class `kind` in `scope`, the first at `first`, the last at
        `last` (one logged answer: both its moment; the events give each group's first and last)."""
        if kind in ("ok", "refused"):
            found = self.scopes.setdefault(scope, ScopeAnswers())
            if kind == "refused":
                found.refusals.extend(sorted({first, last}))
            elif found.latest_ok is None or last > found.latest_ok:
                found.latest_ok = last
        self.counts[kind] += answers
        if kind not in self.latest or last >= self.latest[kind]:
            self.latest[kind] = last
        # Logs come oldest first; of two at the same moment the one read last is the latest.
        if self.last_seen is None or last >= self.last_seen:
            self.last_seen = last
            self.last_status = status

    @property
    def requests(self) -> int:
        """Every logged answer, whatever its class."""
        return sum(self.counts.values())

    @property
    def refused_on(self) -> dict[Scope, datetime]:
        """The models and paths where the key is refused still (no success there since), with
        when that began."""
        refused = {scope: answers.refused_since() for scope, answers in self.scopes.items()}
        return {scope: since for scope, since in sorted(refused.items()) if since is not None}

    @property
    def verdict(self) -> Verdict:
        """`replace` when refused and nothing has succeeded since; `partial` when refused on some
        models or paths but succeeding elsewhere since; else rate-limited, failing, healthy."""
        success = self.latest.get("ok")
        refused = self.refused_on
        if refused:
            # A revoked key fails everywhere from one moment on; a key refused only on some
            # models or paths (a project key without access to one model) goes on succeeding.
            began = min(refused.values())
            return "partial" if success is not None and success > began else "replace"

        def since_success(kind: AnswerClass) -> bool:
            moment = self.latest.get(kind)
            return moment is not None and (success is None or moment > success)

        if since_success("rateLimited"):
            return "rate-limited"
        if since_success("serverErrors"):
            return "failing"
        return "healthy" if success is not None else "unknown"

    def as_json(self) -> dict[str, object]:
        """The row shape of `keys --json`."""
        return {
            "provider": self.provider,
            "keyId": self.key_id,
            "requests": self.requests,
            "ok": self.counts["ok"],
            "rateLimited": self.counts["rateLimited"],
            "refused": self.counts["refused"],
            "serverErrors": self.counts["serverErrors"],
            "lastStatus": self.last_status,
            "lastSeen": usage.stamp(self.last_seen) if self.last_seen else None,
            "verdict": self.verdict,
            "refusedOn": [
                {"model": scope.model, "path": scope.path, "since": usage.stamp(since)}
                for scope, since in self.refused_on.items()
            ],
            "place": self.place,
        }


@dataclass
class KeysReport:
    """Every key's health, and the logged requests that named no key."""

    provider: str | None = None
    """Only this provider's logs count, when set."""
    keys: dict[tuple[str, str], KeyHealth] = field(default_factory=dict)
    without_key: int = 0
    places: stackstate.KeyPlaces | None = None
    """Where the keys' config entries were read from; None until `locate` is called."""

    def add(self, log: LogListResponse) -> None:
        """Count one log under its key, or as one without a key."""
        if self.provider is not None and log.provider != self.provider:
            return
        key_id = usage.worker_metadata(log.metadata).get(usage.METADATA_FIELDS["key"])
        if not key_id:
            self.without_key += 1
            return
        self.key(log.provider or usage.UNKNOWN, key_id).add(log)

    def key(self, provider: str, key_id: str) -> KeyHealth:
        """The health of one key, made on first use."""
        found = self.keys.get((provider, key_id))
        if found is None:
            found = self.keys[provider, key_id] = KeyHealth(provider, key_id)
        return found

    def locate(self, places: stackstate.KeyPlaces) -> None:
        """Give each key its config entry, as the deployed stack's `keyPlaces` output names it."""
        self.places = places
        for key in self.keys.values():
            key.place = places.place(key.provider, key.key_id)

    def rows(self) -> list[KeyHealth]:
        """Worst verdict first, then by provider and key id."""
        return sorted(
            self.keys.values(),
            key=lambda key: (VERDICTS.index(key.verdict), key.provider, key.key_id),
        )

    def as_json(self) -> dict[str, object]:
        """`{"keys": [...]}`, as `keys --json` prints it."""
        return {"keys": [key.as_json() for key in self.rows()]}


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Register `aigw keys`."""
    parser = commands.add_parser(
        "keys",
        help="each pool key's health from every answer it got",
        description=(
            "Count each provider key's answers by class in a time window (both ends included), "
            "every attempt included (a key refused before another key answered counts too), "
            "from the Worker's events in one or two API calls, with a verdict that says which "
            "key to replace. --source logs pages through the gateway's logs instead. "
            + api.OPERATE_ENVIRONMENT
        ),
    )
    api.add_target_arguments(parser)
    usage.add_window_arguments(parser)
    usage.add_source_arguments(parser)
    parser.add_argument(
        "--provider", choices=sorted(PROVIDERS), help="only this provider's keys (default: all)"
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="the stack's state (a pulumi stack export file), to name each key's config entry "
        "(default: the --stack's state, when its backend is a local file://)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    parser.add_argument(
        "--chart",
        type=Path,
        metavar="FILE.png",
        help="also draw each key's answers per hour, stacked by class, into this PNG file",
    )
    parser.set_defaults(handler=api.handles_errors(run))


def run(args: argparse.Namespace) -> int:
    """`aigw keys`."""
    window = usage.parse_window(args.since, args.until, now=datetime.now(UTC))
    chart: Path | None = args.chart
    if chart is not None:
        check_chart_path(chart)
    target = api.resolve_target(args)
    client = api.make_client()
    report = KeysReport(provider=args.provider)
    if args.source == "logs":
        show_progress = not args.json and sys.stderr.isatty()
        for log in usage.gateway_logs(client, target, window, progress=show_progress):
            report.add(log)
    else:
        dataset = usage.dataset_of(args, target)
        read_events(report, client, target, window, dataset, hourly=chart is not None)
    try:
        report.locate(stackstate.read_key_places(target.stack, Path(args.config_dir), args.state))
    except stackstate.StackStateError as error:
        raise api.OperateError(str(error)) from None
    if chart is not None:
        keys_chart.draw_chart(report, target, window, chart)
    if args.json:
        api.print_json(report.as_json())
    else:
        print_table(report, target, window, chart)
    return 0


def read_events(
    report: KeysReport,
    client: Any,
    target: api.Target,
    window: usage.Window,
    dataset: str,
    *,
    hourly: bool,
) -> None:
    """Fill `report` from every answer the keys got (one query; a second for the chart)."""
    sql = events.SqlClient(client, target.account_id)
    provider = report.provider
    for row in sql.rows(events.keys_query(dataset, window.start, window.end, provider)):
        key = report.key(str(row.get("provider") or usage.UNKNOWN), str(row.get("keyId") or ""))
        status = round(events.number(row.get("status")))
        first = events.moment(row.get("first")) or window.start
        last = events.moment(row.get("last")) or first
        scope = Scope(str(row.get("model") or ""), _path_below_provider(row.get("path")))
        answers = round(events.number(row.get("answers")))
        key.seen(status_class(status), first, last, status, answers, scope)
    if not hourly:
        return
    for row in sql.rows(events.keys_hourly_query(dataset, window.start, window.end, provider)):
        key = report.key(str(row.get("provider") or usage.UNKNOWN), str(row.get("keyId") or ""))
        hour = events.moment(row.get("hour"))
        if hour is not None:
            kind = status_class(round(events.number(row.get("status"))))
            key.hourly.setdefault(hour, Counter())[kind] += round(events.number(row.get("answers")))


def _path_below_provider(path: object) -> str:
    """An event's `/<provider>/<rest>` as the logs name a path: `<rest>`, without the slash."""
    text = str(path or "")
    return text.split("/", 2)[2] if text.count("/") >= 2 else text.lstrip("/")


def check_chart_path(path: Path) -> None:
    """Refuse a chart file that could not be written, before the logs are read."""
    if path.suffix.lower() != ".png":
        raise api.OperateError(f"--chart {str(path)!r} must name a .png file")
    folder = path.parent
    if not folder.is_dir():
        raise api.OperateError(f"--chart {str(path)!r}: the folder {str(folder)!r} does not exist")


def print_table(
    report: KeysReport, target: api.Target, window: usage.Window, chart: Path | None
) -> None:
    """The human view: one row per key, keys to replace first and in red."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    # The verdict comes right after the key, so a narrow terminal cuts numbers, never verdicts.
    for name in ("provider", "key", "verdict"):
        table.add_column(name, no_wrap=True)
    for name in ("requests", "ok", "rate limited", "refused", "server errors", "last status"):
        table.add_column(name, justify="right")
    table.add_column("last seen", no_wrap=True)
    table.add_column("config entry", no_wrap=True)
    for key in report.rows():
        style = VERDICT_STYLES[key.verdict]
        table.add_row(
            escape(key.provider),
            escape(key.key_id),
            f"[{style}]{key.verdict}[/]",
            f"{key.requests:,}",
            f"{key.counts['ok']:,}",
            f"{key.counts['rateLimited']:,}",
            f"{key.counts['refused']:,}",
            f"{key.counts['serverErrors']:,}",
            str(key.last_status) if key.last_status is not None else "-",
            _when(key.last_seen),
            escape(key.place or UNKNOWN_PLACE),
            # The whole line of a bad key is coloured, so it is seen before it is read.
            style=None if key.verdict == "healthy" else style,
        )
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or redirected output has no width to fit; rich would assume 80 and crop.
        console = Console(highlight=False, width=TABLE_WIDTH)
    scope = f", provider {report.provider}" if report.provider else ""
    console.print(
        f"gateway {target.gateway_id}, {usage.stamp(window.start)} to "
        f"{usage.stamp(window.end)}{scope}",
        markup=False,
    )
    console.print(table)
    if not report.keys:
        console.print("no key answered in this window")
    for key in report.rows():
        if key.verdict == "partial":
            where = "; ".join(
                f"{scope} since {_when(since)}" for scope, since in key.refused_on.items()
            )
            console.print(
                f"{key.provider} {key.key_id} is refused on {where}, and succeeds elsewhere: "
                "the key lacks access there (a model or endpoint its project or plan does not "
                "include); keep it, and give those requests a key that has it",
                markup=False,
            )
    places = report.places
    if places is not None and any(key.place is None for key in report.keys.values()):
        console.print(
            f"config entries: {places.hint}"
            if places.source is None or places.hint
            else f"a key with an {UNKNOWN_PLACE} config entry is not in the deployed stack "
            f"({places.source}): removed from it, or another stack's",
            markup=False,
        )
    if report.without_key:
        console.print(
            f"{report.without_key:,} logged request(s) named no key and are not counted above "
            "(refused by the gateway itself, or not sent through aigw's Worker); "
            "aigw usage --by key counts them as (unknown)",
            markup=False,
        )
    if chart is not None:
        console.print(f"chart written to {chart}", markup=False)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%m-%d %H:%MZ") if moment else "-"
