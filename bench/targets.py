"""The four ways the benchmark reaches the fake gateway, each started and stopped around its run."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench.load import Target
from bench.upstream import KEYS

if TYPE_CHECKING:
    from infra.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
BASELINE_SOURCE = BENCH_DIR / "baseline_worker.js"
LITELLM_VENV = BENCH_DIR / ".venv-litellm"
LITELLM_REQUIREMENTS = BENCH_DIR / "requirements-litellm.txt"
LITELLM_READY_TIMEOUT = 180.0

CLIENT_NAME = "bench"
CLIENT_TOKEN = "bench-client-token-0001"
"""A fake client token; LiteLLM wants a master key starting `sk-`, so it gets `sk-` + this."""
GATEWAY_TOKEN = "bench-gateway-token"
AIGW_VARIANTS: dict[str, Mapping[str, object]] = {
    "aigw": {},
    # The same Worker with a client policy on: the body is parsed for its model, matched against
    # an allowlist with a glob, and every request is counted by a Rate Limiting binding (in
    # workerd, aigw dev's stand-in; its limit is high enough that nothing is refused).
    "aigw-policy": {
        "clients": {
            CLIENT_NAME: {
                "models": ["claude-*", "gpt-4o-*"],
                "rateLimit": {"limit": 1_000_000, "period": 60},
            }
        }
    },
    # The same Worker that may make one attempt only: no failover, so nothing needs the body's
    # bytes twice and it streams through unread, as the recipe's does. Beside "aigw" it shows
    # what buffering the body for failover costs.
    "aigw-no-failover": {"maxAttempts": 1},
}
"""aigw's Worker as benchmarked: target name -> `aigw:` settings added to the benchmark's own."""
WORKER_TARGET_NAMES = (*AIGW_VARIANTS, "baseline")
"""The targets that are Workers in workerd (and can be profiled): every aigw variant, the recipe."""
TARGET_NAMES = ("direct", *AIGW_VARIANTS, "baseline", "litellm")


class Unavailable(Exception):
    """A target that cannot run here; the message says why, and the benchmark goes on without it."""


def _bearer(token: str) -> Mapping[str, str]:
    return {"authorization": f"Bearer {token}"}


@contextlib.contextmanager
def direct(upstream_url: str) -> Iterator[Target]:
    """The floor: the client calls the fake gateway itself, rotating over the keys."""
    headers = [_bearer(key) for key in KEYS]
    yield Target("direct", f"{upstream_url}/openai/chat/completions", lambda n: headers[n % 4])


def start_worker(
    name: str, upstream_url: str, *, inspector_port: int | None = None
) -> contextlib.AbstractContextManager[Target]:
    """The Worker target `name` (one of `WORKER_TARGET_NAMES`), started against the fake gateway."""
    if name in AIGW_VARIANTS:
        return aigw(upstream_url, name=name, inspector_port=inspector_port)
    if name == "baseline":
        return baseline(upstream_url, inspector_port=inspector_port)
    raise ValueError(f"{name!r} is not a Worker target: {', '.join(WORKER_TARGET_NAMES)}")


@contextlib.contextmanager
def aigw(
    upstream_url: str, *, name: str = "aigw", inspector_port: int | None = None
) -> Iterator[Target]:
    """aigw's rendered Worker in workerd, its gateway URL pointed at the fake gateway.

    `name` picks the variant in `AIGW_VARIANTS`; `inspector_port` opens workerd's V8 inspector.
    """
    try:
        from infra.cli.workerd import WorkerdError, serve_worker
        from infra.settings import rate_limit_bindings
        from infra.worker.render import render_worker
    except ImportError as error:
        raise Unavailable(f"aigw's Worker cannot be loaded: {error}") from error
    try:
        settings = aigw_settings(name)
        source = render_worker(settings, gateway_url=upstream_url)
    except NotImplementedError as error:
        raise Unavailable(f"render_worker is not implemented yet: {error}") from error
    bindings = {
        "OPENAI_API_KEYS": ",".join(KEYS),
        "CLIENT_TOKENS": f"{CLIENT_NAME}:{CLIENT_TOKEN}",
        "GATEWAY_TOKEN": GATEWAY_TOKEN,
    }
    headers = _bearer(CLIENT_TOKEN)
    try:
        rate_limits = rate_limit_bindings(settings)
        with serve_worker(
            source, bindings, rate_limits=rate_limits, inspector_port=inspector_port
        ) as worker:
            url = f"{worker.url}/v1/chat/completions"
            yield Target(name, url, lambda _: headers, listening_pid(worker.url))
    except WorkerdError as error:
        raise Unavailable(str(error)) from error


def aigw_settings(name: str) -> Settings:
    """The settings of aigw's variant `name`: the bench's keys, client and gateway token."""
    from infra.settings import load

    settings, _ = load(
        {
            "accountId": "0" * 32,
            "providerKeys": {"openai": list(KEYS)},
            "clientTokens": {CLIENT_NAME: CLIENT_TOKEN},
            "gatewayToken": GATEWAY_TOKEN,
            **AIGW_VARIANTS[name],
        },
        "bench",
    )
    return settings


@contextlib.contextmanager
def baseline(upstream_url: str, *, inspector_port: int | None = None) -> Iterator[Target]:
    """The naive recipe Worker in workerd; its target base is the fake gateway's `/openai`."""
    try:
        from infra.cli.workerd import WorkerdError, serve_worker
    except ImportError as error:
        raise Unavailable(f"infra.cli.workerd cannot be loaded: {error}") from error
    source = BASELINE_SOURCE.read_text().replace("__TARGET_BASE__", f"{upstream_url}/openai")
    # The recipe has no client auth; the client sends a token anyway, as a real one would.
    headers = _bearer(CLIENT_TOKEN)
    try:
        with serve_worker(source, {}, inspector_port=inspector_port) as worker:
            url = f"{worker.url}/v1/chat/completions"
            yield Target("baseline", url, lambda _: headers, listening_pid(worker.url))
    except WorkerdError as error:
        raise Unavailable(str(error)) from error


@contextlib.contextmanager
def litellm(
    upstream_url: str, executable: Path | None = None, rpm: Mapping[str, int] | None = None
) -> Iterator[Target]:
    """LiteLLM's proxy with one deployment per key, retries and cooldown like aigw's defaults; with
    `rpm` (key -> requests per minute), each key's limit typed in, as `_litellm_config` says."""
    binary = executable or LITELLM_VENV / "bin" / "litellm"
    if not os.access(binary, os.X_OK):
        raise Unavailable(
            f"LiteLLM is not installed at {binary}: python3 -m venv {LITELLM_VENV} && "
            f"{LITELLM_VENV}/bin/pip install -r {LITELLM_REQUIREMENTS}"
        )
    port = free_port()
    master_key = f"sk-{CLIENT_TOKEN}"
    with tempfile.TemporaryDirectory(prefix="aigw-bench-litellm-") as workdir:
        config = Path(workdir) / "config.yaml"
        config.write_text(_litellm_config(upstream_url, master_key, rpm))
        log_path = Path(workdir) / "litellm.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": workdir,
            # Offline: the bundled model price map, no telemetry, no update checks.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOG": "ERROR",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                _wait_ready(process, f"http://127.0.0.1:{port}/health/liveliness", log_path)
                headers = _bearer(master_key)
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                yield Target("litellm", url, lambda _: headers, process.pid)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def litellm_version(executable: Path | None = None) -> str | None:
    """The installed LiteLLM's version, or `None` when it is not installed."""
    python = (executable.parent if executable else LITELLM_VENV / "bin") / "python"
    if not os.access(python, os.X_OK):
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.strip() or None


def _litellm_config(
    upstream_url: str, master_key: str, rpm: Mapping[str, int] | None = None
) -> str:
    """LiteLLM's config.yaml: one deployment per key, two retries (three attempts, like aigw's
    maxAttempts). Without `rpm`, no cool-down, like aigw given the fake gateway's `Retry-After:
    0`; with it, as an operator would set a pool of known limits: each key's `rpm` typed in,
    usage-based routing, and LiteLLM's default cool-down."""
    deployments = "".join(
        f"""  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {upstream_url}/openai
      api_key: {key}
"""
        + ("" if rpm is None else f"      rpm: {rpm[key]}\n")
        for key in KEYS
    )
    router = (
        "  routing_strategy: simple-shuffle\n  num_retries: 2\n  retry_after: 0\n"
        "  cooldown_time: 0\n  allowed_fails: 0\n"
        if rpm is None
        else "  routing_strategy: usage-based-routing-v2\n  num_retries: 2\n"
    )
    return f"""model_list:
{deployments}router_settings:
{router}litellm_settings:
  num_retries: 2
  request_timeout: 30
  telemetry: false
general_settings:
  master_key: {master_key}
"""


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + LITELLM_READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            raise Unavailable(
                f"LiteLLM exited with status {process.returncode} before it was ready: "
                + " | ".join(tail)
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    process.kill()
    raise Unavailable(f"LiteLLM was not ready within {LITELLM_READY_TIMEOUT:g} s")


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening_pid(url: str) -> int | None:
    """The process listening on `url`'s loopback port (serve_worker does not expose workerd's)."""
    port = int(url.rsplit(":", 1)[1])
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                # State 0A is LISTEN; the local address is hex ip:port.
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            fds = f"/proc/{pid}/fd"
            if any(os.readlink(f"{fds}/{fd}") in inodes for fd in os.listdir(fds)):
                return int(pid)
    return None
