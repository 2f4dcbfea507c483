"""`aigw render` and `aigw dev`: the rendered Worker, written out or served locally in workerd."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from dotenv import dotenv_values

from infra.cli.demo import demo_banner, demo_bindings, demo_gateway, demo_settings
from infra.cli.local_analytics import collecting
from infra.cli.stackfile import (
    StackFileError,
    find_stack_file,
    is_encrypted,
    load_settings,
    read_stack_config,
    stack_name,
)
from infra.cli.workerd import WorkerdError, serve_worker
from infra.providers import (
    BINDING_NAMES,
    CLIENT_TOKENS,
    GATEWAY_TOKEN,
    PACKED_BINDING_NAMES,
    PROVIDERS,
)
from infra.secret_bindings import numbered_name
from infra.settings import Settings, rate_limit_bindings
from infra.worker.render import render_worker

DEFAULT_PORT = 8787
DEFAULT_VARS = Path(".dev.vars")
DEFAULT_EVENTS = Path(".aigw-dev-events.jsonl")
"""Where `aigw dev` appends the Worker's data points (beside .dev.vars, a dotfile)."""
LOCAL_STACK = "dev"
"""The stack name used for defaults when there is no stack file."""
PLACEHOLDER_ACCOUNT_ID = "0" * 32
"""Without a stack file there is no account; the gateway URL only matters without --upstream."""


class LocalError(Exception):
    """A problem with the command's input; the message is the whole explanation."""


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register `render` and `dev`; each sets `handler` to a function of the parsed args."""
    render = commands.add_parser(
        "render",
        help="write the rendered Worker source",
        description="Render the Worker for a stack (non-secret settings only) to stdout or FILE. "
        "Environment: PULUMI_STACK (the stack, when --stack is not given).",
    )
    _add_stack(render)
    render.add_argument("-o", "--output", metavar="FILE", type=Path, help="write to FILE")
    render.set_defaults(handler=_run_render)

    dev = commands.add_parser(
        "dev",
        help="serve the rendered Worker locally in workerd",
        description=(
            "Serve the exact rendered Worker on 127.0.0.1 in workerd until interrupted. Secret "
            f"bindings ({', '.join((PROVIDERS['openai'].binding, CLIENT_TOKENS, GATEWAY_TOKEN))}, "
            "…) come from the vars file and from environment variables of the same names, "
            "which win. Like a deployed Worker's, a binding may go on in NAME_2, NAME_3, … "
            "Environment: those bindings, and PULUMI_STACK (the stack, when --stack is not given)."
        ),
    )
    _add_stack(dev)
    dev.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    dev.add_argument(
        "--upstream",
        metavar="URL",
        help="base URL to use instead of the AI Gateway's (any http or https URL)",
    )
    dev.add_argument(
        "--vars",
        metavar="FILE",
        type=Path,
        help=f"dotenv file of secret bindings (default {DEFAULT_VARS}, if it exists)",
    )
    dev.add_argument(
        "--events",
        metavar="FILE",
        type=Path,
        default=DEFAULT_EVENTS,
        help="append each data point the Worker records (its Analytics Engine events, as the "
        f"SQL API shows them) to this JSONL file (default {DEFAULT_EVENTS}); '' records none",
    )
    dev.add_argument(
        "--demo",
        action="store_true",
        help="try it without an account: a built-in stand-in gateway on loopback, demo keys "
        "(one always rate-limited) and a demo client token; prints what to try",
    )
    dev.set_defaults(handler=_run_dev)


def _add_stack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack",
        metavar="S",
        help="read settings from Pulumi.S.yaml (default: $PULUMI_STACK, else the only stack file)",
    )


def stack_settings(stack: str | None, bindings: Mapping[str, str], root: Path) -> Settings:
    """The non-secret settings of `stack`, read from `Pulumi.<stack>.yaml` in `root`.

    Secret values are encrypted in the stack file, so they are not read. The providers are the
    names under `aigw:providerKeys` when that object is stored with per-provider entries (as
    `pulumi config set --secret --path` writes it); when the whole object is one secret, they are
    the providers whose `<SLUG>_API_KEYS` binding is set. Without any stack file, the settings are
    defaults with a placeholder account id and the providers of the bindings.
    """
    path = find_stack_file(stack, root)
    if path is None:
        config: dict[str, object] = {"accountId": PLACEHOLDER_ACCOUNT_ID}
        name = LOCAL_STACK
    else:
        config = read_stack_config(path)
        name = stack_name(path)
    providers = _configured_providers(config.get("providerKeys"), bindings)
    if not providers:
        raise LocalError(
            "no providers: set <SLUG>_API_KEYS (such as OPENAI_API_KEYS) in .dev.vars or the "
            f"environment, or aigw:providerKeys in a stack file (known: {', '.join(PROVIDERS)})"
        )
    return load_settings(config, name, providers)


_NUMBERED_PART = re.compile(
    rf"({'|'.join(re.escape(name) for name in PACKED_BINDING_NAMES)})_([0-9]+)"
)
"""A numbered part of a key pool or of CLIENT_TOKENS (`OPENAI_API_KEYS_2`), as deployed."""


def load_bindings(vars_file: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """Secret bindings from the dotenv `vars_file` (default `.dev.vars`, if present) and `environ`.

    A key pool or `CLIENT_TOKENS` may go on in numbered parts (`NAME_2`, `NAME_3`, …) as it does
    in a deployed Worker. A binding set in the environment (any of its parts) comes from the
    environment alone, whole; empty values count as unset.
    """
    from_file: dict[str, dict[str, str]] = {}
    path = vars_file if vars_file is not None else DEFAULT_VARS
    if vars_file is not None and not path.exists():
        raise LocalError(f"vars file {path} does not exist")
    if path.is_dir():
        raise LocalError(f"vars file {path} is a directory")
    if path.exists():
        try:
            parsed = dotenv_values(path)
        except (OSError, UnicodeDecodeError) as error:
            raise LocalError(f"cannot read vars file {path}: {error}") from None
        from_file = _binding_parts({name: value for name, value in parsed.items() if value})
    from_environment = _binding_parts({name: value for name, value in environ.items() if value})
    bindings: dict[str, str] = {}
    for name in BINDING_NAMES:
        parts = from_environment.get(name) or from_file.get(name) or {}
        bindings.update(_consecutive(name, parts))
    return bindings


def _binding_parts(values: Mapping[str, str | None]) -> dict[str, dict[str, str]]:
    """The values that are secret bindings, grouped by binding: {`NAME`: {part name: value}}."""
    parts: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        numbered = _NUMBERED_PART.fullmatch(name)
        base = numbered.group(1) if numbered else name
        if value and (base in BINDING_NAMES):
            parts.setdefault(base, {})[name] = value
    return parts


def _consecutive(name: str, parts: Mapping[str, str]) -> dict[str, str]:
    """Binding `name`'s parts in order, refused when the Worker would not read one of them."""
    expected = [numbered_name(name, number) for number in range(1, len(parts) + 1)]
    if sorted(parts) != sorted(expected):
        stray = sorted(set(parts) - set(expected))[0]
        raise LocalError(
            f"{stray} is set, but a Worker reads {name}, then {numbered_name(name, 2)}, "
            f"{numbered_name(name, 3)}, … up to the first one missing: number the parts of "
            f"{name} from 2 without a gap"
        )
    return {part: parts[part] for part in expected}


def check_upstream(url: str) -> str:
    """`url` as a gateway base URL without a trailing slash, or a `LocalError` saying why not."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise LocalError(
            f"--upstream {url!r} is not an http(s) URL such as http://127.0.0.1:8080 or "
            "https://gateway.ai.cloudflare.com/v1/<account>/<gateway>"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise LocalError(
            f"--upstream {url!r} has a query, fragment or credentials; give the base URL only"
        )
    return url.rstrip("/")


def _run_render(args: argparse.Namespace) -> int:
    """`aigw render`: print or write the Worker's source for the stack."""
    try:
        bindings = load_bindings(None, os.environ)
        source = render_worker(stack_settings(args.stack, bindings, Path.cwd()))
        if args.output is None:
            sys.stdout.write(source)
        else:
            args.output.write_text(source, encoding="utf-8")
    except (LocalError, StackFileError, OSError) as error:
        return _print_error("render", error)
    return 0


class StopRequest:
    """Whether a signal asked `aigw dev` to stop: a plain flag the handler sets.

    Not a `threading.Event`: the handler runs in the main thread, and `Event.set()` takes a lock
    that the interrupted `Event.wait()` may hold at that moment, so the handler would wait on it
    forever and `aigw dev` would hang on SIGTERM (seen once in the test suite under load)."""

    def __init__(self) -> None:
        self.requested = False

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` unless a stop was asked; whether one was."""
        if not self.requested:
            time.sleep(seconds)
        return self.requested


def _run_dev(args: argparse.Namespace) -> int:
    """`aigw dev`: serve the rendered Worker in workerd until SIGINT or SIGTERM."""
    stop = StopRequest()
    previous = {
        signum: signal.signal(signum, _stop_on_signal(stop))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        return _serve(args, stop)
    except (LocalError, StackFileError, WorkerdError, OSError) as error:
        return _print_error("dev", error)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _serve(args: argparse.Namespace, stop: StopRequest) -> int:
    """Check the input, then serve the Worker until `stop` is set."""
    if not 0 <= args.port <= 65535:
        raise LocalError(f"--port {args.port} is outside 0-65535")
    if args.demo:
        given = [f"--{name}" for name in ("stack", "upstream", "vars") if getattr(args, name)]
        if given:
            raise LocalError(
                f"--demo brings its own settings, secrets and gateway; drop {', '.join(given)}"
            )
        with demo_gateway() as demo_url:
            return _run_worker(args, stop, demo_settings(), demo_bindings(), demo_url, demo=True)
    gateway_url = check_upstream(args.upstream) if args.upstream is not None else None
    bindings = load_bindings(args.vars, os.environ)
    settings = stack_settings(args.stack, bindings, Path.cwd())
    missing = [
        name
        for name in (*(PROVIDERS[slug].binding for slug in settings.providers), CLIENT_TOKENS)
        if name not in bindings
    ]
    if missing:
        vars_file = args.vars or DEFAULT_VARS
        raise LocalError(
            f"missing secret bindings {', '.join(missing)}: set them in {vars_file} "
            "(NAME=value lines) or as environment variables"
        )
    return _run_worker(args, stop, settings, bindings, gateway_url)


def _run_worker(
    args: argparse.Namespace,
    stop: StopRequest,
    settings: Settings,
    bindings: Mapping[str, str],
    gateway_url: str | None,
    *,
    demo: bool = False,
) -> int:
    """Serve the Worker rendered from `settings` until `stop` is set, printing what it serves."""
    if args.port:
        _check_port_free(args.port)
    source = render_worker(settings, gateway_url=gateway_url)
    # The client rate limits, each played by a local stand-in with the deployed binding's name.
    limits = rate_limit_bindings(settings)
    events_file: Path | None = args.events if str(args.events) not in ("", ".") else None
    with ExitStack() as stack:
        # The Worker's data points, as Cloudflare would store them, in a file the user can read.
        analytics = (
            stack.enter_context(collecting(settings.analytics_dataset, events_file))
            if settings.analytics and events_file is not None
            else None
        )
        worker = stack.enter_context(
            serve_worker(source, bindings, port=args.port, rate_limits=limits, analytics=analytics)
        )
        upstream = gateway_url or settings.gateway_url
        demo_lines = ""
        if demo:
            upstream = "the demo gateway on loopback (canned answers; no provider is called)"
            demo_lines = demo_banner(worker.url) + "\n"
        rate_lines = "".join(
            f"  rate limit       {name} ({rate.limit} per {rate.period} s, local stand-in)\n"
            for name, rate in limits.items()
        )
        events_line = (
            f"  events           {events_file} (dataset {settings.analytics_dataset})\n"
            if analytics is not None
            else ""
        )
        print(
            f"aigw dev: serving the Worker at {worker.url}\n"
            f"  OpenAI base URL  {worker.url}/v1\n"
            f"  providers        {', '.join(settings.providers)}\n"
            f"  upstream         {upstream}\n"
            f"{rate_lines}"
            f"{events_line}"
            f"{demo_lines}"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        for note in _notes(settings, gateway_url, bindings):
            print(f"aigw dev: note: {note}", file=sys.stderr, flush=True)
        with worker.log_path.open("rb") as log:
            while not stop.wait(0.2):
                _copy_new(log)
                if worker.process.poll() is not None:
                    _copy_new(log)
                    raise LocalError(f"workerd exited with status {worker.process.returncode}")
            _copy_new(log)
    print("aigw dev: stopped", flush=True)
    return 0


def _notes(settings: Settings, gateway_url: str | None, bindings: Mapping[str, str]) -> list[str]:
    """What will keep requests from reaching the real AI Gateway, when no --upstream is given."""
    if gateway_url is not None:
        return []
    notes = []
    if settings.account_id == PLACEHOLDER_ACCOUNT_ID:
        notes.append("no stack file, so the gateway URL has a placeholder account id; give --stack")
    if GATEWAY_TOKEN not in bindings:
        notes.append(
            f"no {GATEWAY_TOKEN} binding; an AI Gateway with authentication on refuses requests"
        )
    return notes


def _copy_new(log: BinaryIO) -> None:
    """Pass what workerd wrote since the last call (the Worker's console output) to stderr."""
    data: bytes = log.read()
    if data:
        sys.stderr.buffer.write(data)
        sys.stderr.flush()


def _check_port_free(port: int) -> None:
    """Refuse a port that another process listens on, before workerd is started.

    SO_REUSEADDR, as servers (workerd too) set it: connections of a stopped `aigw dev` linger in
    TIME_WAIT for a minute and must not block a restart on the same port; a listener still does.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise LocalError(
                f"127.0.0.1:{port} is not free ({error.strerror}); choose another with --port"
            ) from None


def _stop_on_signal(stop: StopRequest) -> Callable[[int, FrameType | None], None]:
    """A signal handler that asks the serving loop to stop (it then stops workerd in order)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.requested = True

    return handle


def _configured_providers(value: object, bindings: Mapping[str, str]) -> list[str]:
    """Provider slugs from the stack's `providerKeys` shape, else from the bindings present."""
    if isinstance(value, dict) and not is_encrypted(value) and value:
        return [str(slug) for slug in value]
    return [slug for slug, provider in PROVIDERS.items() if provider.binding in bindings]


def _print_error(command: str, error: BaseException) -> int:
    """Print `aigw <command>: error: <error>` to stderr; the exit status is 1."""
    print(f"aigw {command}: error: {error}", file=sys.stderr)
    return 1
