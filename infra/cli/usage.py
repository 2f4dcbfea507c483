"""`aigw usage`: requests, refusals, tokens and cost per group, from the Worker's events and the
gateway's analytics in a few API calls (or, with `--source logs`, from the gateway's logs)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

import cloudflare
from cloudflare.types.ai_gateway import LogListResponse
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infra.cli import api, events, gateway_analytics
from infra.settings import analytics_dataset
from infra.worker.analytics import OWN_OUTCOMES

GroupBy = Literal["model", "provider", "client", "key", "status"]
Source = Literal["events", "logs"]
SOURCES: tuple[Source, ...] = get_args(Source)
WORKER_REFUSALS = frozenset(OWN_OUTCOMES.values()) - {
    "provider_refused",
    "provider_error",
    "gateway_refusal",
}
"""Outcomes of requests the Worker answered itself, before or instead of the gateway: the
refusals the gateway's logs never had."""
GROUPINGS: tuple[GroupBy, ...] = get_args(GroupBy)
# The largest page the logs endpoint serves; fewer round trips on long windows.
PAGE_SIZE = 50
UNKNOWN = "(unknown)"
# The fields of the `cf-aig-metadata` JSON the Worker sends (see `infra/worker/pool.py`).
METADATA_FIELDS: dict[GroupBy, str] = {"client": "client", "key": "keyId"}
_RELATIVE = re.compile(r"([0-9]+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Window:
    """A time window, inclusive of both ends, in UTC."""

    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment <= self.end


@dataclass
class Totals:
    """What one group of logged requests added up to."""

    requests: int = 0
    errors: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    refused: int = 0
    """Requests the Worker refused itself (events only: the logs never see them)."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """Requests by the Worker's outcome (events only)."""

    def add_outcomes(self, outcomes: dict[str, int], cached: int) -> None:
        """Count a group's requests from the Worker's events, by outcome."""
        for outcome, count in outcomes.items():
            self.requests += count
            self.errors += 0 if outcome == "answered" else count
            self.refused += count if outcome in WORKER_REFUSALS else 0
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count
        self.cached += cached

    def add_gateway(self, group: gateway_analytics.GatewayGroup) -> None:
        """Add the gateway's tokens and cost (its requests are the Worker's, counted already)."""
        self.tokens_in += group.tokens_in
        self.tokens_out += group.tokens_out
        self.cost += group.cost

    def add(self, log: LogListResponse) -> None:
        """Count one logged request."""
        self.requests += 1
        self.errors += 0 if log.success else 1
        self.cached += 1 if log.cached else 0
        self.tokens_in += log.tokens_in or 0
        self.tokens_out += log.tokens_out or 0
        self.cost += log.cost or 0.0

    def as_json(self, group: str, from_events: bool = False) -> dict[str, object]:
        """The row shape of `usage --json`; from the Worker's events, with its outcomes."""
        return {
            "group": group,
            "requests": self.requests,
            "errors": self.errors,
            "cached": self.cached,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            # Sums of float costs pick up binary noise; a millionth of a dollar is exact enough.
            "cost": round(self.cost, 6),
            **(
                {"refused": self.refused, "outcomes": dict(sorted(self.outcomes.items()))}
                if from_events
                else {}
            ),
        }


@dataclass
class Usage:
    """Per-group totals plus the grand total."""

    by: GroupBy
    groups: dict[str, Totals] = field(default_factory=dict)
    total: Totals = field(default_factory=Totals)
    from_events: bool = False
    """Counted from the Worker's events (which know its own refusals), not the gateway's logs."""

    def add(self, log: LogListResponse) -> None:
        """Count one logged request in its group and in the total."""
        self.groups.setdefault(group_of(log, self.by), Totals()).add(log)
        self.total.add(log)

    def rows(self) -> list[tuple[str, Totals]]:
        """Groups, busiest first, then by name."""
        return sorted(self.groups.items(), key=lambda item: (-item[1].requests, item[0]))

    def as_json(self) -> dict[str, object]:
        """`{"rows": [...], "total": {...}}`, as `usage --json` prints it."""
        return {
            "rows": [totals.as_json(group, self.from_events) for group, totals in self.rows()],
            "total": self.total.as_json("total", self.from_events),
        }


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Register `aigw usage`."""
    parser = commands.add_parser(
        "usage",
        help="requests, refusals, tokens and cost per model, provider, client or key",
        description=(
            "Add up requests, errors, the Worker's own refusals and cached answers per group in a "
            "time window (both ends included) from the Worker's events (Workers Analytics "
            "Engine), and tokens and cost from the gateway's analytics: a few API calls whatever "
            "the traffic. --source logs pages through the gateway's logs instead. "
            + api.OPERATE_ENVIRONMENT
        ),
    )
    api.add_target_arguments(parser)
    add_window_arguments(parser)
    add_source_arguments(parser)
    parser.add_argument(
        "--by", choices=GROUPINGS, default="model", help="how to group requests (default: model)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    parser.set_defaults(handler=api.handles_errors(run))


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """`--since` and `--until`, the window of logs read by the commands that page through them."""
    parser.add_argument(
        "--since",
        default="24h",
        help="start of the window: a duration back from now (30m, 24h, 7d, 2w) or an ISO time "
        "(default: 24h)",
    )
    parser.add_argument("--until", help="end of the window: an ISO time (default: now)")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """`--source` and `--dataset`, shared by the commands that read the Worker's events."""
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="events",
        help="events: the Worker's events and the gateway's analytics, a few API calls "
        "(default); logs: page through the gateway's logs, one call per 50 requests (Legacy "
        "Logs, accounts created before 2026-09-24)",
    )
    parser.add_argument(
        "--dataset",
        help="the Worker's Analytics Engine dataset (default: the stack's, else the gateway id "
        "with - as _, as for a stack whose workerName is its gatewayId)",
    )


def dataset_of(args: argparse.Namespace, target: api.Target) -> str:
    """The dataset the Worker writes to: `--dataset`, else the stack's, else from the gateway id."""
    if args.dataset:
        return events.dataset_name(args.dataset)
    if target.settings is not None:
        if not target.settings.analytics:
            raise api.OperateError(
                f"stack {target.stack} has aigw:analytics false, so the Worker records no events: "
                "pass --source logs, or turn analytics on"
            )
        return target.settings.analytics_dataset
    return analytics_dataset(target.gateway_id)


def run(args: argparse.Namespace) -> int:
    """`aigw usage`."""
    window = parse_window(args.since, args.until, now=datetime.now(UTC))
    target = api.resolve_target(args)
    client = api.make_client()
    usage = Usage(by=args.by)
    if args.source == "logs":
        show_progress = not args.json and sys.stderr.isatty()
        for log in gateway_logs(client, target, window, progress=show_progress):
            usage.add(log)
    else:
        usage.from_events = True
        read_events(usage, client, target, window, dataset_of(args, target))
    if args.json:
        api.print_json(usage.as_json())
    else:
        print_table(usage, target, window)
    return 0


def read_events(
    usage: Usage, client: cloudflare.Cloudflare, target: api.Target, window: Window, dataset: str
) -> None:
    """Fill `usage` from one SQL query (requests by group and outcome) and one GraphQL query
    (the gateway's tokens and cost by model, provider and client)."""
    sql = events.SqlClient(client, target.account_id)
    rows = sql.rows(events.usage_query(dataset, window.start, window.end, usage.by))
    cached: dict[str, int] = {}
    for row in rows:
        group = str(row.get("grp") or "")
        cached[group] = cached.get(group, 0) + round(events.number(row.get("cached")))
    for group, outcomes in events.outcome_counts(rows, "grp").items():
        name = event_group(group, usage.by)
        usage.groups.setdefault(name, Totals()).add_outcomes(outcomes, cached.get(group, 0))
        usage.total.add_outcomes(outcomes, cached.get(group, 0))
    if usage.by == "status":
        # The gateway's analytics have no status: tokens and cost are in the total only.
        groups = _gateway_groups(client, target, window)
        for gateway_group in groups:
            usage.total.add_gateway(gateway_group)
        return
    for gateway_group in _gateway_groups(client, target, window):
        name = gateway_group_name(gateway_group, usage.by)
        usage.groups.setdefault(name, Totals()).add_gateway(gateway_group)
        usage.total.add_gateway(gateway_group)


def _gateway_groups(
    client: cloudflare.Cloudflare, target: api.Target, window: Window
) -> list[gateway_analytics.GatewayGroup]:
    windows = [gateway_analytics.GatewayWindow(window.start, window.end)]
    return gateway_analytics.read_gateway_usage(client, target, windows)[0]


def event_group(value: str, by: GroupBy) -> str:
    """A group as the events name it: `status` is a number, an empty name is unknown."""
    if by == "status" and value:
        return str(round(events.number(value)))
    return value or UNKNOWN


def gateway_group_name(group: gateway_analytics.GatewayGroup, by: GroupBy) -> str:
    """The usage group a gateway group's tokens and cost belong to."""
    value = {
        "model": group.model,
        "provider": group.provider,
        "client": group.client,
        "key": group.key_id,
    }.get(by, "")
    return value or UNKNOWN


def parse_window(since: str, until: str | None, *, now: datetime) -> Window:
    """The window from `--since` (duration or ISO time) to `--until` (ISO time, default now)."""
    end = parse_time(until, "--until") if until else now
    relative = _RELATIVE.fullmatch(since.strip().lower())
    if relative:
        amount, unit = relative.groups()
        start = end - timedelta(**{_UNITS[unit]: int(amount)})
    else:
        start = parse_time(since, "--since")
    if start > end:
        raise api.OperateError(
            f"the window starts after it ends ({stamp(start)} > {stamp(end)}); "
            "check --since and --until"
        )
    return Window(start, end)


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 date or time; without a zone it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise api.OperateError(
            f"{option} {text!r} is not a time: use an ISO time such as 2026-11-28T09:00:00Z"
            + (" or a duration such as 24h or 7d" if option == "--since" else "")
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def gateway_logs(
    client: cloudflare.Cloudflare, target: api.Target, window: Window, *, progress: bool
) -> Iterator[LogListResponse]:
    """Every log in the window, as `fetch_logs` reads them; a failed API call is one sentence."""
    try:
        yield from fetch_logs(client, target, window, progress=progress)
    except cloudflare.APIError as error:
        doing = f"reading the logs of gateway {target.gateway_id!r}"
        if api.is_missing(error):
            raise api.OperateError(
                f"gateway {target.gateway_id!r} was not found in account {target.account_id} "
                "(HTTP 404); check --gateway-id or the stack's aigw:gatewayId"
            ) from None
        raise api.OperateError(api.describe_api_error(error, doing)) from None


def fetch_logs(
    client: cloudflare.Cloudflare, target: api.Target, window: Window, *, progress: bool
) -> Iterator[LogListResponse]:
    """Every log in the window, oldest first, through the SDK's page-by-page iteration."""
    first = client.ai_gateway.logs.list(
        target.gateway_id,
        account_id=target.account_id,
        start_date=stamp(window.start),
        # Rounded up to the millisecond, so the API's window never ends before ours.
        end_date=stamp(window.end + timedelta(microseconds=-window.end.microsecond % 1000)),
        order_by="created_at",
        order_by_direction="asc",
        page=1,
        per_page=PAGE_SIZE,
    )
    expected = _total_count(first)
    seen: set[str] = set()
    fetched = 0
    bar = Progress(
        TextColumn("reading logs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not progress,
    )
    with bar:
        task = bar.add_task("logs", total=expected)
        for page in first.iter_pages():
            items = page.result or []
            for log in items:
                # Pages are fetched one after another while new logs arrive; a log that shifts
                # across a page boundary must be counted once, and the window is re-checked
                # here so it is exact whatever precision the API compares times at.
                if log.id in seen or log.created_at not in window:
                    continue
                seen.add(log.id)
                yield log
            fetched += len(items)
            bar.update(task, completed=fetched)
            # The SDK asks for pages until one comes back empty; the count saves that request.
            if expected is not None and fetched >= expected:
                break


def _total_count(page: Any) -> int | None:
    """How many logs the window holds, when the first page says."""
    info = getattr(page, "result_info", None)
    total = getattr(info, "total_count", None) if info is not None else None
    return int(total) if isinstance(total, int | float) else None


def group_of(log: LogListResponse, by: GroupBy) -> str:
    """The group a logged request belongs to."""
    if by == "model":
        return log.model or UNKNOWN
    if by == "provider":
        return log.provider or UNKNOWN
    if by == "status":
        if log.status_code is not None:
            return str(log.status_code)
        return "success" if log.success else "error"
    return worker_metadata(log.metadata).get(METADATA_FIELDS[by]) or UNKNOWN


def worker_metadata(raw: object) -> dict[str, str]:
    """The client name and key id the Worker put in `cf-aig-metadata` (logged as JSON text)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return {}
    if not isinstance(raw, dict):
        return {}
    return {str(name): str(value) for name, value in raw.items() if value is not None}


def print_table(usage: Usage, target: api.Target, window: Window) -> None:
    """The human view: one row per group and a total row."""
    table = Table(
        box=box.SIMPLE_HEAD,
        show_footer=True,
        footer_style="bold",
    )
    total = usage.total
    # Group names are what the reader looks for: never cut them short, squeeze the numbers instead.
    longest = max((len(group) for group in usage.groups), default=len(usage.by))
    table.add_column(usage.by, footer="total", min_width=min(longest, 48), overflow="fold")
    columns = [
        ("requests", f"{total.requests:,}"),
        ("errors", f"{total.errors:,}"),
        ("refused", f"{total.refused:,}"),
        ("cached", _cached(total)),
        ("tokens in", f"{total.tokens_in:,}"),
        ("tokens out", f"{total.tokens_out:,}"),
        ("cost", money(total.cost)),
    ]
    if not usage.from_events:
        # The logs never see the Worker's own refusals: no column that would always say 0.
        columns.pop(2)
    for name, footer in columns:
        table.add_column(name, footer=footer, justify="right", no_wrap=True)
    for group, totals in usage.rows():
        refused = [f"{totals.refused:,}"] if usage.from_events else []
        table.add_row(
            group,
            f"{totals.requests:,}",
            f"{totals.errors:,}",
            *refused,
            _cached(totals),
            f"{totals.tokens_in:,}",
            f"{totals.tokens_out:,}",
            money(totals.cost),
        )
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or redirected output has no width to fit; rich would assume 80 and crop.
        console = Console(highlight=False, width=120)
    console.print(
        f"gateway {target.gateway_id}, {stamp(window.start)} to {stamp(window.end)}, by {usage.by}"
    )
    console.print(table)
    if not usage.groups:
        console.print(
            "no requests were recorded in this window"
            if usage.from_events
            else "no requests were logged in this window"
        )
    elif usage.from_events and usage.total.refused:
        console.print(
            f"refused: requests the Worker answered itself ({usage.total.refused:,}: bad tokens, "
            "client policy, pool_exhausted, bad routes), which the gateway's logs never see"
        )


def _cached(totals: Totals) -> str:
    if not totals.requests:
        return "0"
    return f"{totals.cached:,} ({totals.cached / totals.requests:.0%})"


def money(cost: float) -> str:
    # Single requests cost fractions of a cent: show those to the millionth, sums to the cent.
    return f"${cost:,.2f}" if cost >= 1 else f"${cost:.6f}"


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as JavaScript's toISOString writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
