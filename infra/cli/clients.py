"""`aigw clients`: each client's policy from the stack file beside its use: requests and refusals
from the Worker's events, cost and spend from the gateway's analytics (or, with `--source logs`,
all from the gateway's logs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from infra.cli import api, events, gateway_analytics
from infra.cli.stackfile import find_stack_file, is_encrypted, read_stack_config
from infra.cli.usage import (
    METADATA_FIELDS,
    UNKNOWN,
    WORKER_REFUSALS,
    Window,
    add_source_arguments,
    dataset_of,
    gateway_logs,
    money,
    parse_window,
    stamp,
    worker_metadata,
)
from infra.client_policies import ALL_CLIENTS, Budget, ClientPolicy
from infra.settings import DEFAULT_CLIENT, Settings, policy_of

CLIENT_FIELD = METADATA_FIELDS["client"]
"""The `cf-aig-metadata` field in which the Worker names the client."""


@dataclass
class ClientUse:
    """One client's policy and what its logged requests added up to."""

    name: str
    policy: ClientPolicy | None
    requests: int = 0
    cost: float = 0.0
    """Cost of the requests in the `--since`/`--until` window."""
    spent: float = 0.0
    """Cost of the requests inside the budget's window, ending now."""
    refused: int | None = None
    """Requests the Worker refused itself in the window (events only; the logs never see them)."""

    def as_json(self, now: datetime) -> dict[str, object]:
        """The row shape of `clients --json` (DESIGN §5)."""
        policy = self.policy or ClientPolicy()
        budget = policy.budget
        rate = policy.rate_limit
        return {
            "name": self.name,
            "requests": self.requests,
            "cost": _dollars(self.cost),
            "budget": _budget_json(budget),
            "spent": _dollars(self.spent) if budget else None,
            "remaining": _dollars(max(budget.limit - self.spent, 0.0)) if budget else None,
            "rateLimit": {"limit": rate.limit, "period": rate.period} if rate else None,
            "models": list(policy.models) if policy.models is not None else None,
            "providers": list(policy.providers) if policy.providers is not None else None,
            "expires": stamp(policy.expires) if policy.expires else None,
            "expired": policy.expires is not None and policy.expires <= now,
            # Only the Worker's events know its own refusals.
            **({} if self.refused is None else {"refused": self.refused}),
        }


@dataclass
class ClientsReport:
    """Every client's use, plus the gateway-wide budget's."""

    now: datetime
    since: Window
    settings: Settings | None
    """The stack's settings; None when no stack file was read."""
    order: tuple[str, ...] = ()
    """The clients the stack names, in its order."""
    clients: dict[str, ClientUse] = field(default_factory=dict)
    budget: Budget | None = None
    """The gateway-wide budget (`aigw:budget`)."""
    gateway_spent: float = 0.0

    def policy(self, name: str) -> ClientPolicy | None:
        """A client's policy: its own, else `"*"`'s; none without a stack, or for `(unknown)`."""
        if self.settings is None or name == UNKNOWN:
            return None
        return policy_of(self.settings, name)

    def fetch_window(self) -> Window:
        """The logs to read: the `--since`/`--until` window and every budget's window, which
        ends now."""
        policies = self.settings.clients.values() if self.settings else ()
        budgets = [policy.budget for policy in policies]
        windows = [budget.window for budget in [*budgets, self.budget] if budget is not None]
        start = min([self.since.start, *(self.now - timedelta(seconds=w) for w in windows)])
        return Window(start, max(self.since.end, self.now))

    def add(self, created_at: datetime, metadata: object, cost: float | None) -> None:
        """Count one logged request for its client."""
        name = worker_metadata(metadata).get(CLIENT_FIELD) or UNKNOWN
        use = self.clients.get(name)
        if use is None:
            # A client only the logs know: its token is one encrypted value in the stack file,
            # or it was removed from the stack; `"*"` is what would apply to it.
            use = self.clients[name] = ClientUse(name, self.policy(name))
        amount = cost or 0.0
        if created_at in self.since:
            use.requests += 1
            use.cost += amount
        budget = use.policy.budget if use.policy else None
        if budget is not None and created_at >= self.now - timedelta(seconds=budget.window):
            use.spent += amount
        if self.budget is not None and created_at >= self.now - timedelta(
            seconds=self.budget.window
        ):
            self.gateway_spent += amount

    def client(self, name: str) -> ClientUse:
        """A client's use, made on first sight (a client only the records know gets `"*"`'s
        policy, as the Worker would apply it)."""
        use = self.clients.get(name)
        if use is None:
            use = self.clients[name] = ClientUse(name, self.policy(name))
        return use

    def gateway_windows(self) -> list[gateway_analytics.GatewayWindow]:
        """The windows whose cost is read: `--since`, then each budget's, ending now."""
        windows = [gateway_analytics.GatewayWindow(self.since.start, self.since.end)]
        policies = self.settings.clients.values() if self.settings else ()
        budgets = [policy.budget for policy in policies] + [self.budget]
        for seconds in sorted({budget.window for budget in budgets if budget is not None}):
            start = self.now - timedelta(seconds=seconds)
            windows.append(gateway_analytics.GatewayWindow(start, self.now))
        return windows

    def add_events(
        self,
        requests: dict[str, dict[str, int]],
        costs: list[list[gateway_analytics.GatewayGroup]],
    ) -> None:
        """Count the Worker's events (requests by client and outcome in `--since`) and the
        gateway's cost in each of `gateway_windows()`."""
        for name, outcomes in requests.items():
            use = self.client(name or UNKNOWN)
            use.requests += sum(outcomes.values())
            refused = sum(n for outcome, n in outcomes.items() if outcome in WORKER_REFUSALS)
            use.refused = (use.refused or 0) + refused
        for use in self.clients.values():
            use.refused = use.refused or 0
        windows = self.gateway_windows()
        for group in costs[0]:
            self.client(group.client or UNKNOWN).cost += group.cost
        lengths = [round((w.end - w.start).total_seconds()) for w in windows]
        for use in self.clients.values():
            budget = use.policy.budget if use.policy else None
            if budget is not None and budget.window in lengths[1:]:
                groups = costs[lengths.index(budget.window, 1)]
                use.spent = sum(g.cost for g in groups if (g.client or UNKNOWN) == use.name)
        if self.budget is not None and self.budget.window in lengths[1:]:
            groups = costs[lengths.index(self.budget.window, 1)]
            self.gateway_spent = sum(group.cost for group in groups)

    def rows(self) -> list[ClientUse]:
        """Clients of the stack in its order, then those only the logs know, busiest first."""
        others = sorted(
            (u for name, u in self.clients.items() if name not in self.order and u.requests),
            key=lambda use: (-use.requests, use.name),
        )
        return [*(self.clients[name] for name in self.order), *others]

    def as_json(self) -> dict[str, object]:
        """`{"clients": [...], "gateway": {...}}`, as `clients --json` prints it."""
        return {
            "clients": [use.as_json(self.now) for use in self.rows()],
            "gateway": {
                "budget": _budget_json(self.budget),
                "spent": _dollars(self.gateway_spent) if self.budget else None,
                "remaining": (
                    _dollars(max(self.budget.limit - self.gateway_spent, 0.0))
                    if self.budget
                    else None
                ),
            },
        }


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Register `aigw clients`."""
    parser = commands.add_parser(
        "clients",
        help="each client's policy beside its requests, refusals, cost and budget",
        description=(
            "Show each client's policy from the stack file (budget, rate limit, models, "
            "providers, expiry) beside its use: requests and the Worker's refusals in the window "
            "(--since to --until) from the Worker's events, cost in it and the spend inside its "
            "budget's window ending now from the gateway's analytics, in two API calls. --source "
            "logs pages through the gateway's logs instead. " + api.OPERATE_ENVIRONMENT
        ),
    )
    api.add_target_arguments(parser, "accountId, gatewayId and the clients' policies")
    add_source_arguments(parser)
    parser.add_argument(
        "--since",
        default="24h",
        help="start of the window for requests and cost: a duration back from now (30m, 24h, "
        "7d, 2w) or an ISO time (default: 24h); budgets always look back their own window",
    )
    parser.add_argument(
        "--until", help="end of the window for requests and cost: an ISO time (default: now)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    parser.set_defaults(handler=api.handles_errors(run))


def run(args: argparse.Namespace) -> int:
    """`aigw clients`."""
    now = datetime.now(UTC)
    since = parse_window(args.since, args.until, now=now)
    target = api.resolve_target(args)
    report = new_report(target.settings, stack_client_names(args, target), now, since)
    client = api.make_client()
    if args.source == "logs":
        logs = gateway_logs(
            client, target, report.fetch_window(), progress=not args.json and sys.stderr.isatty()
        )
        for log in logs:
            report.add(log.created_at, log.metadata, log.cost)
    else:
        dataset = dataset_of(args, target)
        sql = events.SqlClient(client, target.account_id)
        rows = sql.rows(events.clients_query(dataset, since.start, since.end))
        costs = gateway_analytics.read_gateway_usage(client, target, report.gateway_windows())
        report.add_events(events.outcome_counts(rows, "client"), costs)
    if args.json:
        api.print_json(report.as_json())
    else:
        print_table(report, target)
    return 0


def stack_client_names(args: argparse.Namespace, target: api.Target) -> tuple[str, ...]:
    """The clients the stack file names: those with tokens (readable when stored per client),
    then those with a policy; `default` when it names none, as the program generates it."""
    if target.stack is None or target.settings is None:
        return ()
    path = find_stack_file(target.stack, Path(args.config_dir))
    config = read_stack_config(path) if path is not None else {}
    tokens = config.get("clientTokens")
    named = [name for name in target.settings.clients if name != ALL_CLIENTS]
    token_names = list(tokens) if isinstance(tokens, dict) and not is_encrypted(tokens) else []
    if tokens is None and not named:
        return (DEFAULT_CLIENT,)
    return tuple(dict.fromkeys([*token_names, *named]))


def new_report(
    settings: Settings | None, names: Sequence[str], now: datetime, since: Window
) -> ClientsReport:
    """An empty report holding each named client's policy (its own, else `"*"`'s)."""
    report = ClientsReport(
        now=now,
        since=since,
        settings=settings,
        order=tuple(names),
        budget=settings.budget if settings else None,
    )
    for name in names:
        report.clients[name] = ClientUse(name, report.policy(name))
    return report


def print_table(report: ClientsReport, target: api.Target) -> None:
    """The human view: one row per client, a spent-out budget or a passed expiry in red."""
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("client", overflow="fold")
    # The Worker's own refusals are known from its events only: no column the logs cannot fill.
    from_events = any(use.refused is not None for use in report.clients.values())
    numbers = ("requests", "refused") if from_events else ("requests",)
    for name in (*numbers, "cost", "budget", "spent", "remaining", "rate limit"):
        table.add_column(name, justify="right", no_wrap=True)
    for name in ("models", "providers", "expires"):
        table.add_column(name, overflow="fold")
    for use in report.rows():
        row: Mapping[str, Any] = use.as_json(report.now)
        policy = use.policy or ClientPolicy()
        # Without a stack file, or for requests naming no client, no policy is known at all.
        known = report.settings is not None and use.name != UNKNOWN
        unrestricted = "any" if known else "-"
        remaining = row["remaining"]
        table.add_row(
            use.name,
            f"{use.requests:,}",
            *([f"{use.refused or 0:,}"] if from_events else []),
            money(use.cost),
            _describe_budget(policy.budget),
            money(use.spent) if policy.budget else "-",
            (
                "-"
                if remaining is None
                else f"[red]{money(remaining)}[/]"
                if remaining <= 0
                else money(remaining)
            ),
            f"{policy.rate_limit.limit}/{policy.rate_limit.period}s" if policy.rate_limit else "-",
            ", ".join(policy.models) if policy.models else unrestricted,
            ", ".join(policy.providers) if policy.providers else unrestricted,
            _describe_expiry(policy.expires, report.now) if known else "-",
        )
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or redirected output has no width to fit; rich would assume 80 and crop.
        console = Console(highlight=False, width=160)
    where = f"stack {target.stack}, " if target.stack else ""
    console.print(
        f"{where}gateway {target.gateway_id}, requests and cost since {stamp(report.since.start)}"
        + (f" until {stamp(report.since.end)}" if report.since.end != report.now else "")
    )
    console.print(table)
    if report.budget is not None:
        left = max(report.budget.limit - report.gateway_spent, 0.0)
        console.print(
            f"gateway budget {_describe_budget(report.budget)}: spent "
            f"{money(report.gateway_spent)}, {money(left)} left"
        )
    if target.settings is None:
        console.print("no stack file was read, so no policy is shown (pass --stack)")
    elif not report.rows():
        console.print("the stack names no client and none was logged in this window")


def _budget_json(budget: Budget | None) -> dict[str, object] | None:
    if budget is None:
        return None
    return {"limit": budget.limit, "window": budget.window, "technique": budget.technique}


def _describe_budget(budget: Budget | None) -> str:
    if budget is None:
        return "-"
    return f"{money(budget.limit)}/{_duration(budget.window)}" + (
        " sliding" if budget.technique == "sliding" else ""
    )


def _describe_expiry(expires: datetime | None, now: datetime) -> str:
    if expires is None:
        return "never"
    text = stamp(expires).removesuffix("T00:00:00.000Z").replace(".000Z", "Z")
    return f"[red]{text} (expired)[/]" if expires <= now else text


def _duration(seconds: int) -> str:
    """A window as the largest whole unit: 86400 is 1d, 5400 is 90m."""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _dollars(amount: float) -> float:
    # Sums of float costs pick up binary noise; a millionth of a dollar is exact enough.
    return round(amount, 6)
