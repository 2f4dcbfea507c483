"""`aigw smoke`: a plain and a streamed chat completion through the Worker, found in the logs."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import cloudflare
import httpx
from rich.console import Console
from rich.markup import escape

from infra.cli import api, usage

CLIENT_TOKEN_ENV = "AIGW_TOKEN"
DEFAULT_MODEL = "gpt-4o-mini"
PROMPT = "Reply with the single word: pong"
LOG_ID_HEADER = "cf-aig-log-id"
# Gateway logs land a few seconds after the response; wait this long for them at most.
DEFAULT_LOG_WAIT = 30.0
POLL_INTERVAL = 1.0


@dataclass
class Attempt:
    """One request through the Worker and what became of it."""

    label: str
    started: datetime
    ok: bool = False
    detail: str = ""
    log_id: str | None = None
    """From the gateway's `cf-aig-log-id` response header, which the Worker passes through."""
    key: str | None = None
    client: str | None = None


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Register `aigw smoke`."""
    parser = commands.add_parser(
        "smoke",
        help="send a small chat completion (plain and streamed) through the Worker",
        description=(
            "Send one small chat completion and one streamed one through the deployed Worker, "
            "check the answers, then find both requests in the gateway's logs and report which "
            f"key served them. {api.OPERATE_ENVIRONMENT[:-1]}, {CLIENT_TOKEN_ENV} (the client "
            "token, when --token is not given)."
        ),
    )
    parser.add_argument("--url", required=True, help="the Worker's URL (stack output `url`)")
    parser.add_argument(
        "--token",
        default=os.environ.get(CLIENT_TOKEN_ENV),
        help=f"a client token of the Worker (default: ${CLIENT_TOKEN_ENV})",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"default: {DEFAULT_MODEL}")
    parser.add_argument(
        "--log-wait",
        type=float,
        default=DEFAULT_LOG_WAIT,
        help=f"seconds to wait for the requests to reach the logs (default: {DEFAULT_LOG_WAIT:g})",
    )
    parser.add_argument(
        "--skip-logs", action="store_true", help="only check the answers, not the gateway logs"
    )
    api.add_target_arguments(parser)
    parser.set_defaults(handler=api.handles_errors(run))


def run(args: argparse.Namespace) -> int:
    """`aigw smoke`."""
    token = (args.token or "").strip()
    if not token:
        raise api.OperateError(
            f"no client token: pass --token or export {CLIENT_TOKEN_ENV} "
            "(pulumi stack output --show-secrets clientTokens lists them)"
        )
    if any(character.isspace() for character in token):
        raise api.OperateError("the client token contains white space; tokens are one word")
    # Resolve the gateway before sending anything, so a configuration mistake costs no request.
    target = None if args.skip_logs else api.resolve_target(args)
    client = None if args.skip_logs else api.make_client()
    console = Console(highlight=False, soft_wrap=True)
    endpoint = args.url.rstrip("/") + "/v1/chat/completions"
    with httpx.Client(
        timeout=api.HTTP_TIMEOUT, headers={"authorization": f"Bearer {token}"}
    ) as http:
        attempts = [
            send_completion(http, endpoint, args.model),
            send_streamed_completion(http, endpoint, args.model),
        ]
    for attempt in attempts:
        _print(console, attempt.ok, attempt.label, attempt.detail)
    if client is not None and target is not None:
        find_in_logs(client, target, [a for a in attempts if a.ok], args.log_wait)
        for attempt in attempts:
            if attempt.ok:
                found = attempt.key is not None
                detail = (
                    f"{attempt.label}: log {attempt.log_id}, key {attempt.key}, "
                    f"client {attempt.client}"
                    if found
                    else f"{attempt.label}: not found in the logs of gateway "
                    f"{target.gateway_id!r} after {args.log_wait:g} s"
                )
                _print(console, found, "logged", detail)
    passed = all(a.ok and (args.skip_logs or a.key is not None) for a in attempts)
    console.print("smoke test passed" if passed else "smoke test failed")
    return 0 if passed else 1


def _print(console: Console, ok: bool, label: str, detail: str) -> None:
    """One report line: mark, label, detail."""
    console.print(f"{api.MARKS['ok' if ok else 'fail']} {label.ljust(10)}  {escape(detail)}")


def _body(model: str, *, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
    return body


def send_completion(http: httpx.Client, endpoint: str, model: str) -> Attempt:
    """A non-streamed completion: 200 and a non-empty answer."""
    attempt = Attempt("completion", datetime.now(UTC))
    try:
        response = http.post(endpoint, json=_body(model, stream=False))
    except httpx.HTTPError as error:
        attempt.detail = _unreachable(endpoint, error)
        return attempt
    attempt.log_id = response.headers.get(LOG_ID_HEADER)
    if response.status_code != 200:
        attempt.detail = _refused(response)
        return attempt
    try:
        answer = response.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError):
        attempt.detail = "the answer is not an OpenAI chat completion"
        return attempt
    if not isinstance(answer, str) or not answer.strip():
        attempt.detail = "the answer is empty"
        return attempt
    attempt.ok = True
    attempt.detail = f"{model} answered {_quote(answer)}"
    return attempt


def send_streamed_completion(http: httpx.Client, endpoint: str, model: str) -> Attempt:
    """A streamed completion: server-sent events with content, ending in `[DONE]`."""
    attempt = Attempt("stream", datetime.now(UTC))
    pieces: list[str] = []
    events = 0
    done = False
    try:
        with http.stream("POST", endpoint, json=_body(model, stream=True)) as response:
            attempt.log_id = response.headers.get(LOG_ID_HEADER)
            if response.status_code != 200:
                response.read()
                attempt.detail = _refused(response)
                return attempt
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    done = True
                    break
                events += 1
                pieces.append(_delta(data))
    except httpx.HTTPError as error:
        attempt.detail = _unreachable(endpoint, error)
        return attempt
    answer = "".join(pieces)
    if not done:
        attempt.detail = f"the stream ended without [DONE] after {events} event(s)"
    elif not answer.strip():
        attempt.detail = f"the stream carried no content in {events} event(s)"
    else:
        attempt.ok = True
        attempt.detail = f"{model} streamed {_quote(answer)} in {events} event(s)"
    return attempt


def _delta(data: str) -> str:
    """The content of one streamed chunk (the JSON after `data:`), or "" if it has none."""
    try:
        content = json.loads(data)["choices"][0]["delta"].get("content")
    except (ValueError, LookupError, TypeError, AttributeError):
        return ""
    return content if isinstance(content, str) else ""


def _quote(answer: str) -> str:
    text = " ".join(answer.split())
    return repr(text if len(text) <= 40 else text[:39] + "…")


def _unreachable(endpoint: str, error: httpx.HTTPError) -> str:
    return f"{endpoint} did not answer ({type(error).__name__}); check --url"


def _refused(response: httpx.Response) -> str:
    """Why the Worker refused: its status, its own error message, and a hint on 401."""
    message = ""
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = f": {error['message']}"
    except (ValueError, AttributeError):
        pass
    hint = "; check --token" if response.status_code == 401 else ""
    return f"the Worker answered HTTP {response.status_code}{message}{hint}"


def find_in_logs(
    client: cloudflare.Cloudflare, target: api.Target, attempts: list[Attempt], wait: float
) -> None:
    """Fill in the key and client of each attempt from its gateway log, waiting for it to land."""
    deadline = time.monotonic() + wait
    while True:
        for attempt in attempts:
            if attempt.key is None:
                _look_up(client, target, attempt, attempts)
        if all(a.key is not None for a in attempts) or time.monotonic() >= deadline:
            return
        time.sleep(POLL_INTERVAL)


def _look_up(
    client: cloudflare.Cloudflare, target: api.Target, attempt: Attempt, all_: list[Attempt]
) -> None:
    """Fill in `attempt` from its gateway log if that has landed; else leave it as it is."""
    try:
        if attempt.log_id is not None:
            try:
                log: Any = client.ai_gateway.logs.get(
                    attempt.log_id, account_id=target.account_id, gateway_id=target.gateway_id
                )
            except cloudflare.NotFoundError:
                return  # not written yet
        else:
            log = _first_unclaimed_log(client, target, attempt, all_)
            if log is None:
                return
    except cloudflare.APIError as error:
        raise api.OperateError(
            api.describe_api_error(error, f"reading the logs of gateway {target.gateway_id!r}")
        ) from None
    metadata = usage.worker_metadata(log.metadata)
    attempt.log_id = log.id
    attempt.key = metadata.get(usage.METADATA_FIELDS["key"], usage.UNKNOWN)
    attempt.client = metadata.get(usage.METADATA_FIELDS["client"], usage.UNKNOWN)


def _first_unclaimed_log(
    client: cloudflare.Cloudflare, target: api.Target, attempt: Attempt, all_: list[Attempt]
) -> Any:
    # Without a log id (a proxy dropped the header), the attempt's log is the first one logged
    # after it started that no other attempt has claimed: requests were sent one at a time.
    window = usage.Window(attempt.started - timedelta(seconds=1), datetime.now(UTC))
    claimed = {a.log_id for a in all_ if a.log_id is not None}
    for log in usage.fetch_logs(client, target, window, progress=False):
        if log.id not in claimed and "chat/completions" in (log.path or ""):
            return log
    return None
