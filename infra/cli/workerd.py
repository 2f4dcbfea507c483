"""Serves a rendered Worker in workerd on loopback: the runtime behind `aigw dev` and the tests."""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from infra.cli.local_analytics import LocalAnalytics
from infra.client_policies import ClientRateLimit
from infra.worker.analytics import BINDING as ANALYTICS_BINDING
from infra.worker.render import COMPATIBILITY_DATE, MAIN_MODULE, TEMPLATE_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERD = REPO_ROOT / "node_modules" / ".bin" / "workerd"
"""The workerd pinned by package.json and its lock file; `npm ci` installs it."""
READY_TIMEOUT = 30.0
"""Seconds workerd gets to compile the Worker and listen (a cold start on a busy CI runner)."""
STOP_TIMEOUT = 5.0
"""Seconds between SIGTERM and SIGKILL."""
LOG_TAIL_LINES = 20
RATE_LIMIT_STAND_IN = TEMPLATE_DIR / "ratelimit.js"
"""The JavaScript module that plays a Workers Rate Limiting binding locally (fixed windows)."""
RATE_LIMIT_MODULE = "aigw-internal:ratelimit"
"""Its module name in workerd: an internal extension module, so the Worker cannot import it."""

# Binding names are written into the capnp config: only identifiers, so none can change its meaning.
_BINDING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SOCKET = "http"
_PR_SET_PDEATHSIG = 1


class WorkerdError(RuntimeError):
    """workerd is missing, would not start, or did not become ready."""


@dataclass(frozen=True)
class RunningWorker:
    """A Worker being served by workerd on 127.0.0.1."""

    url: str
    """`http://127.0.0.1:<port>`, without a trailing slash."""
    log_path: Path
    """workerd's captured stdout and stderr (the Worker's console output included)."""
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)
    """The workerd process (its `pid`, or `poll()` to see whether it is still running)."""


@contextmanager
def serve_worker(
    source: str,
    bindings: Mapping[str, str],
    *,
    port: int = 0,
    log_path: Path | None = None,
    ready_timeout: float = READY_TIMEOUT,
    rate_limits: Mapping[str, ClientRateLimit] | None = None,
    inspector_port: int | None = None,
    analytics: LocalAnalytics | None = None,
) -> Iterator[RunningWorker]:
    """Serve the ES module `source` in workerd on 127.0.0.1 until the block exits.

    `bindings` become text bindings read from workerd's environment, so their (secret) values
    are never written to disk. `rate_limits` (binding name to {limit, period}, as
    `infra.settings.rate_limit_bindings` gives them) become Rate Limiting bindings played by the
    local stand-in `worker_template/ratelimit.js`, with Cloudflare's `limit({key})` API. `port`
    0 lets the kernel choose a free port. `log_path` keeps workerd's output at a path of the
    caller's; by default it lives in a temporary directory removed on exit. workerd is always
    stopped on exit: SIGTERM, then SIGKILL. `inspector_port` opens the V8 inspector (Chrome
    DevTools protocol) on 127.0.0.1 at that port, for profiling. `analytics` gives the Worker
    its Analytics Engine binding, whose data points workerd posts to that loopback collector
    (an experimental workerd feature: workerd then runs with `--experimental`).
    """
    limits = dict(rate_limits or {})
    for name in [*bindings, *limits]:
        if not _BINDING_NAME.fullmatch(name):
            raise WorkerdError(f"binding name {name!r} is not an identifier")
    for number in (port, inspector_port or 0):
        if not 0 <= number <= 65535:
            raise WorkerdError(f"port {number} is outside 0-65535")
    binary = workerd_binary()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aigw-workerd-")))
        (workdir / MAIN_MODULE).write_text(source, encoding="utf-8")
        if limits:
            (workdir / RATE_LIMIT_STAND_IN.name).write_text(
                RATE_LIMIT_STAND_IN.read_text(encoding="utf-8"), encoding="utf-8"
            )
        config = workdir / "config.capnp"
        config.write_text(_config(bindings, port, limits, analytics), encoding="utf-8")
        log = log_path if log_path is not None else workdir / "workerd.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log_file = stack.enter_context(log.open("ab"))
        control_read, control_write = os.pipe()
        control = stack.enter_context(os.fdopen(control_read, "rb", buffering=0))
        command = [str(binary), "serve", config.name, f"--control-fd={control_write}"]
        if inspector_port is not None:
            command.append(f"--inspector-addr=127.0.0.1:{inspector_port}")
        if analytics is not None:
            command.append("--experimental")
        try:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                # Only the bindings: workerd needs nothing else from the environment.
                env=dict(bindings),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=(control_write,),
                # Its own session, so a terminal's Ctrl-C reaches only us and we stop it in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            os.close(control_write)
        stack.callback(_stop, process)
        bound = _wait_listening(process, control, log, bindings.values(), ready_timeout)
        yield RunningWorker(url=f"http://127.0.0.1:{bound}", log_path=log, process=process)


def workerd_binary() -> Path:
    """The pinned workerd executable, or a `WorkerdError` saying how to install it."""
    if not os.access(WORKERD, os.X_OK):
        raise WorkerdError(
            f"workerd not found at {WORKERD}: run `npm ci` in {REPO_ROOT} to install the pinned "
            "version (package.json)"
        )
    return WORKERD


def _config(
    bindings: Mapping[str, str],
    port: int,
    rate_limits: Mapping[str, ClientRateLimit],
    analytics: LocalAnalytics | None = None,
) -> str:
    """The capnp config: one Worker, text bindings from the environment, the rate-limit stand-ins
    as wrapped bindings, the analytics binding to a loopback collector, open outbound network."""
    entries = [
        f"(name = {json.dumps(name)}, fromEnvironment = {json.dumps(name)})" for name in bindings
    ]
    for name, rate in rate_limits.items():
        inner = {"name": name, "limit": rate.limit, "period": rate.period}
        inner_bindings = ", ".join(
            f"(name = {json.dumps(key)}, json = {json.dumps(json.dumps(value))})"
            for key, value in inner.items()
        )
        entries.append(
            f"(name = {json.dumps(name)}, wrapped = (moduleName = {json.dumps(RATE_LIMIT_MODULE)}, "
            f"innerBindings = [{inner_bindings}]))"
        )
    services = ""
    if analytics is not None:
        # workerd names the dataset after the service the binding designates (server.c++).
        if not _BINDING_NAME.fullmatch(analytics.dataset):
            raise WorkerdError(f"dataset name {analytics.dataset!r} is not an identifier")
        entries.append(
            f"(name = {json.dumps(ANALYTICS_BINDING)}, "
            f"analyticsEngine = {json.dumps(analytics.dataset)})"
        )
        services = (
            f"\n    (name = {json.dumps(analytics.dataset)}, "
            f'external = (address = "127.0.0.1:{int(analytics.port)}", http = ())),'
        )
    text_bindings = ",\n    ".join(entries)
    extensions = (
        f"""
  extensions = [(modules = [(name = {json.dumps(RATE_LIMIT_MODULE)}, """
        f"""esModule = embed {json.dumps(RATE_LIMIT_STAND_IN.name)}, internal = true)])],"""
        if rate_limits
        else ""
    )
    return f"""\
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .aigwWorker),
    # Loopback and private addresses too: `aigw dev --upstream` and the tests use loopback.
    (name = "internet", network = (
      allow = ["public", "private", "local"],
      tlsOptions = (trustBrowserCas = true),
    )),{services}
  ],
  sockets = [
    (name = "{_SOCKET}", address = "127.0.0.1:{port}", http = (), service = "main"),
  ],{extensions}
);

const aigwWorker :Workerd.Worker = (
  modules = [
    (name = {json.dumps(MAIN_MODULE)}, esModule = embed {json.dumps(MAIN_MODULE)}),
  ],
  compatibilityDate = {json.dumps(COMPATIBILITY_DATE)},
  bindings = [
    {text_bindings}
  ],
  globalOutbound = "internet",
);
"""


def _find_prctl() -> Callable[[int, int], int] | None:
    """libc's prctl, looked up now: the forked child must not load libraries (loader locks)."""
    try:
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _find_prctl()


def _die_with_parent() -> None:
    """In the child: have Linux SIGTERM it if we die without stopping it (no orphan workerd)."""
    # Without prctl (not Linux) the context manager's own stop is the only guarantee.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_listening(
    process: subprocess.Popen[bytes],
    control: BinaryIO,
    log: Path,
    secrets: Iterable[str],
    timeout: float,
) -> int:
    """Wait for workerd's `listen` control message; return the bound port."""
    values = [value for value in secrets if value]
    deadline = time.monotonic() + timeout
    buffered = b""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WorkerdError(
                f"workerd exited with status {process.returncode} before it was ready"
                + _tail(log, values)
            )
        readable, _, _ = select.select([control], [], [], 0.1)
        chunk = control.read(4096) if readable else b""
        buffered += chunk or b""
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            port = _listen_port(line)
            if port is not None and _accepts(port):
                return port
    raise WorkerdError(f"workerd was not ready within {timeout:g} s" + _tail(log, values))


def _listen_port(line: bytes) -> int | None:
    """The port of a control message `{"event": "listen", "socket": "http", "port": N}`."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("event") != "listen":
        return None
    # Older workerd releases named the field `socketName`.
    if message.get("socket", message.get("socketName")) != _SOCKET:
        return None
    port = message.get("port")
    return port if isinstance(port, int) else None


def _accepts(port: int) -> bool:
    """Whether 127.0.0.1:`port` accepts a TCP connection."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _tail(log: Path, secrets: list[str]) -> str:
    """The last lines of workerd's log for an error message, with any binding value masked."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return ""
    text = "\n".join(lines)
    # Longest first, so a value containing another is masked whole.
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, "***")
    return f"; workerd said:\n{text}" if text else "; workerd printed nothing"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM workerd, SIGKILL it if it has not exited within `STOP_TIMEOUT`, and reap it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
