"""The workerd launcher (bindings, ports, readiness errors, stopping) with hand-written modules."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import infra.cli.workerd
from infra.cli.workerd import WorkerdError, serve_worker
from tests.upstream import FakeGateway

ECHO_BINDINGS = """
export default {
  async fetch(request, env) {
    return Response.json({ names: Object.keys(env).sort(), lengths: [env.A_KEYS?.length] });
  },
};
"""
FETCH_UPSTREAM = """
export default {
  async fetch(request, env) {
    const answer = await fetch(env.UPSTREAM + "/openai/models");
    return new Response(answer.body, answer);
  },
};
"""
SECRET = "sk-test-launcher"


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether process `pid` no longer exists (or is a zombie) within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_serves_module_with_text_bindings() -> None:
    """The module is served on loopback and sees each binding with its value."""
    with serve_worker(ECHO_BINDINGS, {"A_KEYS": SECRET, "CLIENT_TOKENS": "x:y"}) as worker:
        assert worker.url.startswith("http://127.0.0.1:")
        answer = httpx.get(worker.url + "/anything")
    assert answer.status_code == 200
    assert answer.json() == {"names": ["A_KEYS", "CLIENT_TOKENS"], "lengths": [len(SECRET)]}


def test_binding_values_are_never_written_to_disk() -> None:
    """No file workerd is given (config, module) holds a binding's value."""
    with serve_worker(ECHO_BINDINGS, {"A_KEYS": SECRET}) as worker:
        workdir = Path(os.readlink(f"/proc/{worker.process.pid}/cwd"))
        files = [path for path in workdir.rglob("*") if path.is_file()]
        assert {path.name for path in files} >= {"config.capnp", "worker.js"}
        assert all(SECRET not in path.read_text(errors="replace") for path in files)


def test_outbound_fetch_reaches_a_loopback_upstream() -> None:
    """The Worker's fetch() may reach 127.0.0.1, as `aigw dev --upstream` and the tests need."""
    with FakeGateway() as upstream, serve_worker(FETCH_UPSTREAM, {"UPSTREAM": upstream.url}) as w:
        answer = httpx.get(w.url + "/")
    assert answer.status_code == 200
    assert answer.json()["data"][0]["id"] == "gpt-test"
    assert [request.route for request in upstream.requests] == ["/openai/models"]


def test_explicit_port_is_used() -> None:
    """A given port is the one served."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with serve_worker(ECHO_BINDINGS, {}, port=port) as worker:
        assert worker.url == f"http://127.0.0.1:{port}"
        assert httpx.get(worker.url).status_code == 200


def test_inspector_port_lists_the_worker_for_devtools() -> None:
    """With `inspector_port`, the V8 inspector on that loopback port lists the Worker to attach."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        inspector = probe.getsockname()[1]
    with serve_worker(ECHO_BINDINGS, {}, inspector_port=inspector) as worker:
        assert httpx.get(worker.url).status_code == 200
        listing = httpx.get(f"http://127.0.0.1:{inspector}/json").json()
    assert [entry["webSocketDebuggerUrl"] for entry in listing] == [
        f"ws://127.0.0.1:{inspector}/main"
    ]


def test_busy_port_is_a_clear_error() -> None:
    """A port already in use fails fast with workerd's reason, not a hang."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(WorkerdError, match=r"(?s)before it was ready.*Address already in use"),
            serve_worker(ECHO_BINDINGS, {}, port=port),
        ):
            pass


def test_broken_module_error_shows_the_log_without_secrets() -> None:
    """A module that fails to load is reported with workerd's log tail, binding values masked."""
    broken = f"throw new Error('cannot start with {SECRET}');"
    with (
        pytest.raises(WorkerdError, match="exited with status") as raised,
        serve_worker(broken, {"A_KEYS": SECRET}),
    ):
        pass
    assert "cannot start with ***" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_not_ready_in_time_is_an_error_and_a_stuck_workerd_is_killed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A module stuck at start-up is reported after the timeout; SIGKILL ends what SIGTERM can't."""
    monkeypatch.setattr(infra.cli.workerd, "STOP_TIMEOUT", 0.5)
    stuck = "for (let i = 0; i < 1e15; i++) {}\nexport default { fetch() {} };"
    log = tmp_path / "workerd.log"
    with (
        pytest.raises(WorkerdError, match="not ready within 1 s"),
        serve_worker(stuck, {}, ready_timeout=1, log_path=log),
    ):
        pass
    # The log is where the caller asked for it, and outlives the block.
    assert log.is_file()


@pytest.mark.parametrize("name", ["A-KEYS", "1ABC", "A KEYS", 'A"); x = (', ""])
def test_binding_names_must_be_identifiers(name: str) -> None:
    """A binding name that could change the capnp config's meaning is refused before starting."""
    with (
        pytest.raises(WorkerdError, match="is not an identifier"),
        serve_worker(ECHO_BINDINGS, {name: "value"}),
    ):
        pass


def test_missing_workerd_says_to_run_npm_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without node_modules the error names the command that installs workerd."""
    monkeypatch.setattr(infra.cli.workerd, "WORKERD", tmp_path / "workerd")
    with pytest.raises(WorkerdError, match="run `npm ci`"), serve_worker(ECHO_BINDINGS, {}):
        pass


def test_workerd_is_stopped_on_exit_and_on_error() -> None:
    """Leaving the block, normally or by an exception, leaves no workerd running."""
    with serve_worker(ECHO_BINDINGS, {}) as worker:
        first = worker.process.pid
    with pytest.raises(RuntimeError, match="boom"), serve_worker(ECHO_BINDINGS, {}) as worker:
        second = worker.process.pid
        raise RuntimeError("boom")
    assert _gone(first, within=0)
    assert _gone(second, within=0)


def test_workerd_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """Even a SIGKILLed parent, which runs no cleanup, leaves no orphan workerd."""
    script = (
        "import sys, time\n"
        "from infra.cli.workerd import serve_worker\n"
        "with serve_worker('export default { fetch() { return new Response(\"\") } }', {}) as w:\n"
        "    print(w.process.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert not _gone(pid, within=0)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _gone(pid)
    finally:
        parent.kill()
        parent.wait(timeout=10)
