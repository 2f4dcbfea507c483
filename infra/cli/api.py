"""What the commands that operate a deployment share: the target, the Cloudflare client, errors."""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cloudflare
from rich.console import Console
from rich.markup import escape

from infra.cli.stackfile import (
    STACK_ENV,
    NoStackFileError,
    StackFileError,
    configured_providers,
    find_stack_file,
    load_settings,
    read_stack_config,
    stack_name,
)
from infra.settings import Settings, default_name

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
ACCOUNT_ENV = "CLOUDFLARE_ACCOUNT_ID"
BASE_URL_ENV = "CLOUDFLARE_BASE_URL"
OPERATE_ENVIRONMENT = (
    f"Environment: {TOKEN_ENV} (required: a Cloudflare API token with AI Gateway Read), "
    f"{BASE_URL_ENV} (another Cloudflare API address; default the public API), {ACCOUNT_ENV} "
    f"(the account, when neither --account-id nor the stack names it), {STACK_ENV} (the stack, "
    "when --stack is not given)."
)
"""What every command that talks to the Cloudflare API reads from the environment (its help)."""
TOKEN_PAGE = "https://dash.cloudflare.com/profile/api-tokens"
# The SDK retries connection errors and 5xx with backoff; tests lower this to keep error paths fast.
API_RETRIES = 2
HTTP_TIMEOUT = 30.0

Status = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[Status, str] = {
    "ok": "[green]ok  [/]",
    "warn": "[yellow]warn[/]",
    "fail": "[red]FAIL[/]",
    "skip": "[dim]skip[/]",
}
"""How doctor and smoke mark a line of their report; all four are as wide."""
Handler = Callable[[argparse.Namespace], int]


class OperateError(Exception):
    """A problem the user can fix; the message is one sentence, printed without a traceback."""


@dataclass(frozen=True)
class Target:
    """Which gateway the command talks about, and the stack settings it was deployed with."""

    account_id: str
    gateway_id: str
    stack: str | None
    settings: Settings | None
    """The stack's validated non-secret settings, when a stack config file was read."""


def add_target_arguments(
    parser: argparse.ArgumentParser, stack_gives: str = "accountId and gatewayId"
) -> None:
    """The options that select the account and the gateway, shared by every operate command;
    `stack_gives` says what this command reads of the stack."""
    parser.add_argument(
        "--stack",
        help=f"read {stack_gives} from Pulumi.<stack>.yaml "
        f"(default: ${STACK_ENV}, else the only stack file)",
    )
    parser.add_argument(
        "--account-id",
        help=f"Cloudflare account id (default: the stack's aigw:accountId, else ${ACCOUNT_ENV})",
    )
    parser.add_argument(
        "--gateway-id",
        help="AI Gateway id (default: the stack's aigw:gatewayId, else aigw-<stack>)",
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=Path("."),
        help="directory holding Pulumi.<stack>.yaml (default: the current directory)",
    )


def handles_errors(run: Handler) -> Handler:
    """Turn expected failures into one clear sentence on stderr and exit status 1."""

    @functools.wraps(run)
    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (OperateError, StackFileError) as error:
            report_error(str(error))
        except cloudflare.APIError as error:
            report_error(describe_api_error(error, "talking to the Cloudflare API"))
        return 1

    return handler


def report_error(message: str) -> None:
    """Print `aigw: error: <message>` to stderr."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]aigw: error:[/] {escape(message)}"
    )


def resolve_target(args: argparse.Namespace) -> Target:
    """Account and gateway from the flags, else the stack config file, else the environment."""
    # Both ids given and no --stack: the target is fully named, so no stack file is consulted.
    explicit = args.stack is None and args.account_id and args.gateway_id
    try:
        path = None if explicit else find_stack_file(args.stack, Path(args.config_dir))
    except NoStackFileError as error:
        raise OperateError(
            f"{error}: run from the project directory, pass --config-dir, or give --account-id "
            "and --gateway-id instead"
        ) from None
    stack = stack_name(path) if path is not None else None
    config = read_stack_config(path) if path is not None else {}
    account_id = args.account_id or _text(config.get("accountId")) or os.environ.get(ACCOUNT_ENV)
    if not account_id:
        raise OperateError(
            f"no account id: pass --account-id, set aigw:accountId in a stack (--stack), "
            f"or export {ACCOUNT_ENV}"
        )
    gateway_id = args.gateway_id or _text(config.get("gatewayId"))
    if not gateway_id:
        if stack is None:
            raise OperateError("no gateway id: pass --gateway-id, or --stack to use its gateway")
        gateway_id = default_name(stack)
    stack_settings = None
    if stack is not None:
        # Only the non-secret settings are read; the providers are named for client policies.
        providers = configured_providers(config)
        stack_settings = load_settings({**config, "accountId": account_id}, stack, providers)
    return Target(account_id, gateway_id, stack, stack_settings)


def _text(value: object) -> str | None:
    """A non-empty string from the stack file, else None."""
    return value if isinstance(value, str) and value else None


def make_client() -> cloudflare.Cloudflare:
    """A Cloudflare client from `CLOUDFLARE_API_TOKEN` (and `CLOUDFLARE_BASE_URL`, if set)."""
    # The SDK reads CLOUDFLARE_BASE_URL itself; BASE_URL_ENV only names it in help and errors.
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise OperateError(
            f"{TOKEN_ENV} is not set: create a token with AI Gateway Read at {TOKEN_PAGE} "
            f"and export it as {TOKEN_ENV}"
        )
    return cloudflare.Cloudflare(api_token=token, max_retries=API_RETRIES, timeout=HTTP_TIMEOUT)


def describe_api_error(error: cloudflare.APIError, doing: str) -> str:
    """One sentence for a failed API call; `doing` says what was being attempted."""
    if isinstance(error, cloudflare.APITimeoutError):
        return f"the Cloudflare API did not answer in time while {doing}; try again later"
    if isinstance(error, cloudflare.APIConnectionError):
        hint = f" and {BASE_URL_ENV}" if os.environ.get(BASE_URL_ENV) else ""
        return (
            f"could not reach the Cloudflare API at {_base_url(error)} while {doing} "
            f"({_root_cause(error)}); check the network connection{hint}"
        )
    if isinstance(error, cloudflare.APIStatusError):
        status = error.status_code
        detail = _api_messages(error)
        if detail is None:
            return (
                f"the Cloudflare API answered HTTP {status} with an error page instead of JSON "
                f"while {doing}; it may be having trouble, try again later"
            )
        if status in (401, 403):
            return (
                f"the Cloudflare API refused the token while {doing} (HTTP {status}: {detail}); "
                f"check {TOKEN_ENV} and that it has AI Gateway Read on this account"
            )
        return f"the Cloudflare API answered HTTP {status} while {doing}: {detail}"
    return f"the Cloudflare API sent an unexpected answer while {doing}: {error.message}"


def is_missing(error: cloudflare.APIError) -> bool:
    """Whether the API said the thing asked about does not exist (404 with a JSON body)."""
    return isinstance(error, cloudflare.NotFoundError) and _api_messages(error) is not None


def _api_messages(error: cloudflare.APIStatusError) -> str | None:
    # Cloudflare's JSON envelope carries `errors: [{code, message}]`; anything else (an HTML
    # error page from an edge or proxy) is reported as such rather than dumped on the user.
    body = error.body
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if not isinstance(errors, list):
        return None
    parts = []
    for item in errors:
        if isinstance(item, dict) and item.get("message"):
            code = item.get("code")
            parts.append(f"{item['message']} [code {code}]" if code else str(item["message"]))
    return "; ".join(parts) or "no error message"


def _base_url(error: cloudflare.APIConnectionError) -> str:
    url = error.request.url
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _root_cause(error: BaseException) -> str:
    # The SDK wraps httpx's error, which wraps the socket's: the innermost one names the reason.
    reason: BaseException = error
    while (inner := reason.__cause__ or reason.__context__) is not None:
        reason = inner
    text = str(reason).strip()
    return text.splitlines()[0] if text and reason is not error else "connection failed"


def print_json(document: object) -> None:
    """Write one JSON document to stdout, for scripts."""
    print(json.dumps(document, indent=2))
