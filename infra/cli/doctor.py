"""`aigw doctor`: check the token, the account, the gateway and its settings, and the Worker."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import cloudflare
import httpx
from cloudflare.types.ai_gateway import AIGatewayGetResponse
from rich.console import Console
from rich.markup import escape

from infra.cli import api
from infra.settings import Settings


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it went, and how to fix it."""

    name: str
    status: api.Status
    detail: str
    fix: str = ""


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Register `aigw doctor`."""
    parser = commands.add_parser(
        "doctor",
        help="check the token, the account, the gateway and its settings, and the Worker",
        description=(
            "Check that the API token works, the account and the AI Gateway exist, the gateway's "
            "settings match the stack's configuration, and (with --url) that the Worker answers "
            "/healthz. Exits non-zero when a check fails. " + api.OPERATE_ENVIRONMENT
        ),
    )
    api.add_target_arguments(parser, "accountId, gatewayId and the settings to compare")
    parser.add_argument("--url", help="the Worker's URL, to check that /healthz answers 200")
    parser.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    parser.set_defaults(handler=api.handles_errors(run))


def run(args: argparse.Namespace) -> int:
    """`aigw doctor`."""
    target = api.resolve_target(args)
    client = api.make_client()
    checks = diagnose(client, target, args.url)
    failed = any(check.status == "fail" for check in checks)
    if args.json:
        api.print_json({"ok": not failed, "checks": [asdict(check) for check in checks]})
    else:
        print_report(checks)
    return 1 if failed else 0


def diagnose(client: cloudflare.Cloudflare, target: api.Target, url: str | None) -> list[Check]:
    """Run every check in order; a check that others depend on stops them when it fails."""
    checks = [check_token(client, target)]
    if checks[0].status == "fail":
        checks.append(Check("gateway", "skip", "not checked: the token does not work"))
    else:
        checks.append(check_account(client, target))
        gateway_check, gateway = check_gateway(client, target)
        checks.append(gateway_check)
        if gateway is not None and target.settings is not None:
            checks.extend(compare_settings(gateway, target.settings, target.stack or ""))
        elif gateway is not None:
            checks.append(
                Check("settings", "skip", "not compared: pass --stack to compare with a stack")
            )
    checks.append(check_health(url))
    return checks


def check_token(client: cloudflare.Cloudflare, target: api.Target) -> Check:
    """The token is known to Cloudflare and active (user-owned or account-owned)."""
    fix = f"create a token at {api.TOKEN_PAGE} and export it as {api.TOKEN_ENV}"
    refused = (cloudflare.AuthenticationError, cloudflare.PermissionDeniedError)
    doing = "verifying the token"
    try:
        verified: Any = client.user.tokens.verify()
        kind = "user token"
    except refused as user_error:
        # Account-owned tokens are only known to their account's own verify endpoint.
        try:
            verified = client.accounts.tokens.verify(account_id=target.account_id)
            kind = "account token"
        except refused:
            return Check("token", "fail", api.describe_api_error(user_error, doing), fix)
        except cloudflare.APIError as error:
            return Check("token", "fail", api.describe_api_error(error, doing), fix)
    except cloudflare.APIError as error:
        return Check("token", "fail", api.describe_api_error(error, doing), fix)
    status = getattr(verified, "status", "unknown")
    if status != "active":
        return Check("token", "fail", f"the token is {status}", fix)
    expiry = f", expires {verified.expires_on:%Y-%m-%d}" if verified.expires_on else ""
    return Check("token", "ok", f"active {kind}{expiry}")


def check_account(client: cloudflare.Cloudflare, target: api.Target) -> Check:
    """The account exists and the token can see it."""
    try:
        account = client.accounts.get(account_id=target.account_id)
    except cloudflare.PermissionDeniedError:
        # Reading account details needs a permission aigw does not otherwise use; the gateway
        # check below still proves the token reaches the account.
        return Check(
            "account",
            "warn",
            f"{target.account_id}: the token may not read account details",
            "optional: add Account Settings Read to the token to check the account by itself",
        )
    except cloudflare.APIError as error:
        return Check(
            "account",
            "fail",
            api.describe_api_error(error, f"reading account {target.account_id}"),
            f"check --account-id, aigw:accountId or {api.ACCOUNT_ENV}",
        )
    name = account.name if account is not None else "?"
    return Check("account", "ok", f"{name} ({target.account_id})")


def check_gateway(
    client: cloudflare.Cloudflare, target: api.Target
) -> tuple[Check, AIGatewayGetResponse | None]:
    """The gateway exists in the account."""
    try:
        gateway = client.ai_gateway.get(target.gateway_id, account_id=target.account_id)
    except cloudflare.APIError as error:
        if api.is_missing(error):
            detail = f"no gateway {target.gateway_id!r} in account {target.account_id}"
            stack = f" --stack {target.stack}" if target.stack else ""
            fix = f"check --gateway-id / aigw:gatewayId, or deploy it: pulumi up{stack}"
        else:
            detail = api.describe_api_error(error, f"reading gateway {target.gateway_id!r}")
            fix = f"give {api.TOKEN_ENV} the AI Gateway Read permission on this account"
        return Check("gateway", "fail", detail, fix), None
    return Check("gateway", "ok", f"{gateway.id} exists"), gateway


def compare_settings(gateway: AIGatewayGetResponse, wanted: Settings, stack: str) -> list[Check]:
    """The gateway's live settings against what the stack configures."""
    fix = f"pulumi up --stack {stack} puts the stack's settings back (someone changed them)"
    checks = [
        _expect(
            "authentication",
            bool(gateway.authentication),
            True,
            _on_off,
            "the Worker authenticates to the gateway, so the gateway must require it; " + fix,
        ),
        _expect("collect logs", gateway.collect_logs, wanted.collect_logs, _on_off, fix),
        _expect("cache ttl", gateway.cache_ttl or 0, wanted.cache_ttl, _seconds, fix),
    ]
    live_limit = None
    if gateway.rate_limiting_limit and gateway.rate_limiting_interval:
        live_limit = (
            gateway.rate_limiting_limit,
            gateway.rate_limiting_interval,
            gateway.rate_limiting_technique or "fixed",
        )
    rate = wanted.rate_limit
    wanted_limit = (rate.limit, rate.interval, rate.technique) if rate else None
    checks.append(_expect("rate limit", live_limit, wanted_limit, _rate, fix))
    return checks


def _expect(name: str, live: Any, wanted: Any, show: Callable[[Any], str], fix: str) -> Check:
    if live == wanted:
        return Check(name, "ok", show(live))
    return Check(name, "fail", f"gateway has {show(live)}, stack wants {show(wanted)}", fix)


def _on_off(value: Any) -> str:
    return "on" if value else "off"


def _seconds(value: Any) -> str:
    return f"{value} s" if value else "off"


def _rate(value: Any) -> str:
    if value is None:
        return "off"
    limit, interval, technique = value
    return f"{limit} requests per {interval} s ({technique})"


def check_health(url: str | None) -> Check:
    """The Worker answers `GET /healthz` with 200."""
    if not url:
        return Check("worker", "skip", "not checked: pass --url to check the Worker's /healthz")
    health = url.rstrip("/") + "/healthz"
    try:
        response = httpx.get(health, timeout=api.HTTP_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as error:
        return Check(
            "worker",
            "fail",
            f"{health} did not answer ({type(error).__name__})",
            "check --url; the stack output `url` has it (pulumi stack output url)",
        )
    if response.status_code != 200:
        return Check(
            "worker",
            "fail",
            f"{health} answered HTTP {response.status_code}",
            "redeploy the Worker with pulumi up, or check --url",
        )
    return Check("worker", "ok", f"{health} answered 200")


def print_report(checks: list[Check]) -> None:
    """One line per check: mark, name, detail, and the fix when there is one."""
    console = Console(highlight=False, soft_wrap=True)
    width = max(len(check.name) for check in checks)
    for check in checks:
        line = f"{api.MARKS[check.status]} {check.name.ljust(width)}  {escape(check.detail)}"
        if check.fix:
            line += f" [dim]→ {escape(check.fix)}[/]"
        console.print(line)
    failed = sum(check.status == "fail" for check in checks)
    console.print("all checks passed" if not failed else f"{failed} check(s) failed")
