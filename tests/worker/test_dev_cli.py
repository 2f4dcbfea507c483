"""`aigw dev` and `aigw render` as a user runs them: real processes, real workerd, loopback only."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import openai
import pytest

from infra.cli.local import BINDING_NAMES
from infra.cli.main import main
from infra.settings import load
from infra.worker.render import render_worker
from tests.upstream import FakeGateway

AIGW = Path(sys.executable).with_name("aigw")
TOKEN = "tok-test-dev-000001"
VARS = f"OPENAI_API_KEYS=sk-test-dev-a,sk-test-dev-b\nCLIENT_TOKENS=laptop:{TOKEN}\n"
READY = re.compile(r"serving the Worker at (http://127\.0\.0\.1:\d+)")
STACK_FILE = """\
encryptionsalt: v1:test-salt
config:
  aigw:accountId: 0123456789abcdef0123456789abcdef
  aigw:providerKeys:
    openai:
      - secure: v1:encrypted-openai-key
    anthropic:
      - secure: v1:encrypted-anthropic-key
  aigw:clientTokens:
    laptop:
      secure: v1:encrypted-laptop-token
  aigw:gatewayToken:
    secure: v1:encrypted-gateway-token
  aigw:maxBodyBytes: "2048"
  aigw:corsOrigins: '["https://chat.example.com"]'
  other:setting: ignored
"""
STACK_RAW = {
    "accountId": "0123456789abcdef0123456789abcdef",
    "providerKeys": {"openai": ["k"], "anthropic": ["k"]},
    "maxBodyBytes": "2048",
    "corsOrigins": '["https://chat.example.com"]',
}


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _exists(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _lines(path: Path) -> list[str]:
    """The lines of a file that may not exist yet."""
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _start_dev(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # os.environ has no bindings here: the autouse fixture removed the caller's own.
    return subprocess.Popen(
        [str(AIGW), "dev", "--port", "0", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ready(process: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    """Wait for the whole ready banner; return the URL it names and the banner."""
    assert process.stdout is not None
    # Raw reads: a buffered readline would hold back text that communicate() then never sees.
    descriptor = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline and b"Press Ctrl-C to stop." not in seen:
        readable, _, _ = select.select([descriptor], [], [], 0.2)
        if readable:
            seen += os.read(descriptor, 4096)
        elif process.poll() is not None:
            break
    match = READY.search(seen.decode())
    if match is None or b"Press Ctrl-C to stop." not in seen:
        process.kill()
        _, stderr = process.communicate(timeout=10)
        raise AssertionError(f"aigw dev did not become ready: {seen!r} {stderr!r}")
    return match.group(1), seen.decode()


@pytest.fixture(autouse=True)
def _no_bindings_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's own bindings and stack choice must not change what the commands see."""
    for name in list(os.environ):
        # The bindings and their numbered parts (OPENAI_API_KEYS_2, …).
        if name == "PULUMI_STACK" or name.startswith(BINDING_NAMES):
            monkeypatch.delenv(name)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with a `.dev.vars` and no stack file."""
    (tmp_path / ".dev.vars").write_text(VARS)
    return tmp_path


@pytest.fixture
def dev_process() -> Iterator[list[subprocess.Popen[str]]]:
    """Started `aigw dev` processes, killed at teardown if a test left one running."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_dev_serves_the_worker_until_signalled(
    project: Path,
    upstream: FakeGateway,
    dev_process: list[subprocess.Popen[str]],
    signum: signal.Signals,
) -> None:
    """`aigw dev` serves requests through workerd, shows the Worker's log lines, then stops cleanly
    leaving no workerd behind."""
    upstream.behaviours["sk-test-dev-a"] = "rate_limited"
    process = _start_dev(project, "--upstream", upstream.url)
    dev_process.append(process)
    url, _ = _ready(process)
    workerd = _children(process.pid)
    assert len(workerd) == 1
    client = openai.OpenAI(base_url=url + "/v1", api_key=TOKEN, max_retries=0)
    # Two requests: rotation starts one of them at the limited key, which fails over.
    for _ in range(2):
        completion = client.chat.completions.create(model="gpt-test", messages=[])
        assert completion.choices[0].message.content == "Hello from the fake gateway."
    assert upstream.key_counts() == {"sk-test-dev-a": 1, "sk-test-dev-b": 2}
    # What the Worker recorded: two requests and the attempt that failed over, in the JSONL file
    # aigw dev names, with no key and no token in it.
    events = project / ".aigw-dev-events.jsonl"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(_lines(events)) < 3:
        time.sleep(0.05)
    points = [json.loads(line) for line in _lines(events)]
    assert sorted((p["blob2"], p["blob7"], p["double1"]) for p in points) == [
        ("attempt", "provider_rate_limited", 429.0),
        ("request", "answered", 200.0),
        ("request", "answered", 200.0),
    ]
    assert not [s for s in ("sk-test-dev-a", "sk-test-dev-b", TOKEN) if s in events.read_text()]
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "aigw dev: stopped" in stdout
    assert "429" in stderr  # the Worker's warning about the limited key, passed on
    assert "Traceback" not in stderr
    assert not _exists(workerd[0])
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/healthz")


def test_dev_without_upstream_says_what_the_real_gateway_needs(
    project: Path, dev_process: list[subprocess.Popen[str]]
) -> None:
    """Served against the real gateway with no stack and no gateway token, it says so."""
    process = _start_dev(project)
    dev_process.append(process)
    _, banner = _ready(process)
    process.terminate()
    _, stderr = process.communicate(timeout=20)
    assert "upstream         https://gateway.ai.cloudflare.com/v1/" in banner
    assert "placeholder account id; give --stack" in stderr
    assert "no GATEWAY_TOKEN binding" in stderr


def test_environment_wins_over_the_vars_file(
    project: Path, upstream: FakeGateway, dev_process: list[subprocess.Popen[str]]
) -> None:
    """A binding set in the environment replaces the one in `.dev.vars`."""
    process = _start_dev(
        project, "--upstream", upstream.url, env={"OPENAI_API_KEYS": "sk-test-from-env"}
    )
    dev_process.append(process)
    url, _ = _ready(process)
    answer = httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert upstream.key_counts() == {"sk-test-from-env": 1}
    process.terminate()
    process.communicate(timeout=20)


NUMBERED_VARS = (
    "OPENAI_API_KEYS=sk-test-dev-a\nOPENAI_API_KEYS_2=sk-test-dev-b\n"
    f"CLIENT_TOKENS=laptop:{TOKEN}\nCLIENT_TOKENS_2=ci:tok-test-dev-ci-0002\n"
)
"""A pool and a client list each in two parts, as `pulumi up` binds them when they are large."""


def test_dev_reads_numbered_parts_as_a_deployed_worker_does(
    tmp_path: Path, upstream: FakeGateway, dev_process: list[subprocess.Popen[str]]
) -> None:
    """Keys and client tokens in NAME and NAME_2 are one pool and one client list, as deployed."""
    (tmp_path / ".dev.vars").write_text(NUMBERED_VARS)
    process = _start_dev(tmp_path, "--upstream", upstream.url)
    dev_process.append(process)
    url, _ = _ready(process)
    for token in (TOKEN, "tok-test-dev-ci-0002"):
        client = openai.OpenAI(base_url=url + "/v1", api_key=token, max_retries=0)
        completion = client.chat.completions.create(model="gpt-test", messages=[])
        assert completion.choices[0].message.content == "Hello from the fake gateway."
    assert upstream.key_counts() == {"sk-test-dev-a": 1, "sk-test-dev-b": 1}
    process.terminate()
    process.communicate(timeout=20)


def test_a_binding_from_the_environment_replaces_all_its_parts(
    tmp_path: Path, upstream: FakeGateway, dev_process: list[subprocess.Popen[str]]
) -> None:
    """OPENAI_API_KEYS in the environment replaces the file's OPENAI_API_KEYS and its _2, so the
    pool is the environment's alone, never a mix of both sources."""
    (tmp_path / ".dev.vars").write_text(NUMBERED_VARS)
    env = {"OPENAI_API_KEYS": "sk-test-from-env"}
    process = _start_dev(tmp_path, "--upstream", upstream.url, env=env)
    dev_process.append(process)
    url, _ = _ready(process)
    for _ in range(3):
        answer = httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
    assert upstream.key_counts() == {"sk-test-from-env": 3}
    process.terminate()
    process.communicate(timeout=20)


def test_dev_reads_a_named_vars_file_and_the_stack(
    tmp_path: Path, upstream: FakeGateway, dev_process: list[subprocess.Popen[str]]
) -> None:
    """`--vars` and `--stack` pick the secrets and the settings (here the body limit) served."""
    (tmp_path / "Pulumi.staging.yaml").write_text(STACK_FILE)
    anthropic = "ANTHROPIC_API_KEYS=sk-ant-test-dev\n"
    (tmp_path / "secrets.env").write_text(VARS + anthropic)
    process = _start_dev(
        tmp_path, "--stack", "staging", "--vars", "secrets.env", "--upstream", upstream.url
    )
    dev_process.append(process)
    url, _ = _ready(process)
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert (
        httpx.post(url + "/v1/chat/completions", content=b"x" * 2049, headers=auth).status_code
        == 413
    )
    answer = httpx.post(url + "/anthropic/v1/messages", json={"model": "m"}, headers=auth)
    assert answer.status_code == 200
    assert upstream.key_counts() == {"sk-ant-test-dev": 1}
    process.terminate()
    process.communicate(timeout=20)


def test_dev_serves_the_stack_rate_limits_locally(
    tmp_path: Path, upstream: FakeGateway, dev_process: list[subprocess.Popen[str]]
) -> None:
    """The stack's client rate limits are served by the local stand-in under the deployed binding
    names: listed in the banner, counted per client, refused over the limit."""
    limits = "  aigw:clients:\n    laptop:\n      rateLimit: {limit: 1, period: 60}\n"
    (tmp_path / "Pulumi.staging.yaml").write_text(STACK_FILE + limits)
    (tmp_path / ".dev.vars").write_text(VARS + "ANTHROPIC_API_KEYS=sk-ant-test-dev\n")
    process = _start_dev(tmp_path, "--stack", "staging", "--upstream", upstream.url)
    dev_process.append(process)
    url, banner = _ready(process)
    assert "rate limit       RATE_LIMIT_1_PER_60S (1 per 60 s, local stand-in)" in banner
    auth = {"authorization": f"Bearer {TOKEN}"}
    first = httpx.post(url + "/v1/chat/completions", json={"model": "m"}, headers=auth)
    second = httpx.post(url + "/v1/chat/completions", json={"model": "m"}, headers=auth)
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.headers["retry-after"] == "60"
    assert second.json()["error"]["code"] == "rate_limited"
    process.terminate()
    _, stderr = process.communicate(timeout=20)
    assert "aigw rate limit RATE_LIMIT_1_PER_60S: laptop refused" in stderr
    assert TOKEN not in stderr


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


INPUT_ERRORS = {
    "vars file missing": ("", ["--vars", "missing.env"], r"vars file missing\.env does not exist"),
    "vars file a directory": ("", ["--vars", "."], r"vars file \. is a directory"),
    "upstream ftp": (VARS, ["--upstream", "ftp://example.com"], r"'ftp://example\.com' is not an"),
    "upstream without scheme": (VARS, ["--upstream", "localhost:8080"], "is not an http"),
    "upstream without host": (VARS, ["--upstream", "http://"], "is not an http"),
    "upstream bad port": (VARS, ["--upstream", "http://127.0.0.1:99999"], "is not an http"),
    "upstream query": (VARS, ["--upstream", "http://127.0.0.1:8080/?a=1"], "has a query"),
    "upstream credentials": (VARS, ["--upstream", "http://user:pw@127.0.0.1"], "credentials"),
    "no client tokens": (
        "OPENAI_API_KEYS=sk-test-a\n",
        [],
        "missing secret bindings CLIENT_TOKENS",
    ),
    "no providers": ("CLIENT_TOKENS=a:tok-test-000000001\n", [], "no providers: set <SLUG>_API"),
    "port out of range": (VARS, ["--port", "70000"], "--port 70000 is outside 0-65535"),
    "numbered part after a gap": (
        VARS + "OPENAI_API_KEYS_3=sk-test-c\n",
        [],
        r"OPENAI_API_KEYS_3 is set, but a Worker reads OPENAI_API_KEYS, then OPENAI_API_KEYS_2",
    ),
    "numbered part without the first": (
        "OPENAI_API_KEYS_2=sk-test-b\n" + VARS.split("\n", 1)[1],
        [],
        r"OPENAI_API_KEYS_2 is set, but a Worker reads OPENAI_API_KEYS, then",
    ),
    "unknown stack": (VARS, ["--stack", "prod"], "stack 'prod' has no configuration file Pulumi"),
}


@pytest.mark.parametrize(
    ("setup", "argv", "message"), list(INPUT_ERRORS.values()), ids=list(INPUT_ERRORS)
)
def test_dev_input_errors_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    argv: list[str],
    message: str,
) -> None:
    """Bad input ends with one line that says what is wrong, status 1, and no workerd started."""
    monkeypatch.chdir(tmp_path)
    if setup:
        (tmp_path / ".dev.vars").write_text(setup)
    status, out, err = _run(["dev", "--port", "0", *argv], capsys)
    assert status == 1
    assert out == ""
    assert err.count("\n") == 1
    assert re.search(message, err), err
    assert err.startswith("aigw dev: error: ")


def test_dev_names_a_busy_port(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port already taken is reported as such, with the option that changes it."""
    monkeypatch.chdir(project)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, _, err = _run(["dev", "--port", str(port)], capsys)
    assert status == 1
    assert f"127.0.0.1:{port} is not free" in err
    assert "--port" in err


def test_dev_restarts_on_the_port_it_just_served(
    project: Path, upstream: FakeGateway, dev_process: list[subprocess.Popen[str]]
) -> None:
    """Stopped while a client kept its connection open, `aigw dev` starts again at once on the
    same port: the connection the server closed lingers in TIME_WAIT, and must not make the port
    look busy (it did, for a minute)."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    for _ in range(2):
        process = _start_dev(project, "--port", str(port), "--upstream", upstream.url)
        dev_process.append(process)
        url, _ = _ready(process)
        assert url == f"http://127.0.0.1:{port}"
        # A keep-alive client, as SDKs are: the server side closes first when aigw dev stops.
        with httpx.Client() as client:
            answer = client.get(url + "/v1/models", headers={"authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 200
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr


def test_dev_refuses_a_choice_between_stacks(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With several stack files and no --stack or PULUMI_STACK, it asks which one."""
    monkeypatch.chdir(project)
    for stack in ("dev", "prod"):
        (project / f"Pulumi.{stack}.yaml").write_text(STACK_FILE)
    status, _, err = _run(["dev", "--port", "0"], capsys)
    assert status == 1
    assert "several stacks (dev, prod); choose one with --stack" in err


def _expected_source(raw: Mapping[str, object], stack: str) -> str:
    settings, _ = load(raw, stack)
    return render_worker(settings)


def test_source_command_prints_the_worker_of_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aigw render --stack S` prints exactly `render_worker` of S's settings, and no secret."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Pulumi.staging.yaml").write_text(STACK_FILE)
    status, out, err = _run(["render", "--stack", "staging"], capsys)
    assert (status, err) == (0, "")
    assert out == _expected_source(STACK_RAW, "staging")
    assert "gateway.ai.cloudflare.com/v1/0123456789abcdef0123456789abcdef/aigw-staging" in out
    assert "encrypted" not in out and "v1:" not in out.replace("/v1/", "")


def test_source_command_finds_the_stack_by_env_or_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --stack, PULUMI_STACK names the stack; failing that, the only stack file is used."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Pulumi.solo.yaml").write_text(STACK_FILE)
    assert _run(["render"], capsys)[1] == _expected_source(STACK_RAW, "solo")
    (tmp_path / "Pulumi.other.yaml").write_text(STACK_FILE)
    monkeypatch.setenv("PULUMI_STACK", "other")
    assert _run(["render"], capsys)[1] == _expected_source(STACK_RAW, "other")


def test_source_command_takes_providers_from_vars_when_the_pool_is_one_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A providerKeys object encrypted whole hides its providers; the vars' bindings name them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GROQ_API_KEYS", "gsk-test-a")
    stack = STACK_FILE.replace(
        "  aigw:providerKeys:\n    openai:\n      - secure: v1:encrypted-openai-key\n"
        "    anthropic:\n      - secure: v1:encrypted-anthropic-key\n",
        "  aigw:providerKeys:\n    secure: v1:encrypted-whole-object\n",
    )
    (tmp_path / "Pulumi.s.yaml").write_text(stack)
    (tmp_path / ".dev.vars").write_text("XAI_API_KEYS=xai-test-a\n")
    status, out, _ = _run(["render"], capsys)
    assert status == 0
    assert out == _expected_source(
        {**STACK_RAW, "providerKeys": {"xai": ["k"], "groq": ["k"]}}, "s"
    )
    assert "gsk-test-a" not in out and "xai-test-a" not in out


def test_source_command_writes_a_file_without_a_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no stack file, `-o` writes the Worker for the providers of `.dev.vars`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dev.vars").write_text(VARS)
    status, out, err = _run(["render", "-o", "worker.js"], capsys)
    assert (status, out, err) == (0, "", "")
    written = (tmp_path / "worker.js").read_text()
    raw = {"accountId": "0" * 32, "providerKeys": {"openai": ["k"]}}
    assert written == _expected_source(raw, "dev")
    assert "sk-test-dev-a" not in written and TOKEN not in written


def test_source_command_reads_numbered_bindings_and_refuses_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aigw render` takes the providers of numbered bindings as `aigw dev` does (the source is
    the same: the Worker finds the parts itself), and stops on a part it would never read."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dev.vars").write_text(NUMBERED_VARS)
    status, out, err = _run(["render"], capsys)
    assert (status, err) == (0, "")
    assert out == _expected_source(
        {"accountId": "0" * 32, "providerKeys": {"openai": ["k"]}}, "dev"
    )
    assert "sk-test-dev-b" not in out and "tok-test-dev-ci-0002" not in out
    (tmp_path / ".dev.vars").write_text(NUMBERED_VARS + "CLIENT_TOKENS_4=late:tok-test-late-0004\n")
    status, out, err = _run(["render"], capsys)
    assert (status, out) == (1, "")
    assert err.startswith("aigw render: error: CLIENT_TOKENS_4 is set, but a Worker reads")
