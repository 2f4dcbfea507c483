"""`aigw dev --demo` as a newcomer runs it: real workerd, the official SDKs, the failover shown."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from infra.cli.demo import DEMO_TOKEN, RATE_LIMITED_KEY, demo_banner, demo_gateway
from infra.cli.main import main

AIGW = Path(sys.executable).with_name("aigw")
READY = "Press Ctrl-C to stop."


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`aigw dev --demo` in an empty directory, on a free port; stopped after the test."""
    environ = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEYS", "_TOKENS"))}
    process = subprocess.Popen(
        [str(AIGW), "dev", "--demo", "--port", "0"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = ""
    deadline = time.monotonic() + 60
    while READY not in banner and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner += line
    ready = re.search(r"serving the Worker at (http://127\.0\.0\.1:\d+)", banner)
    assert ready is not None, banner
    try:
        yield ready[1], process
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


def test_demo_serves_the_openai_sdk_plain_and_streamed_with_failover(
    demo: tuple[str, subprocess.Popen[str]],
) -> None:
    """Every answer comes through the healthy key; the rate-limited one is tried, logged by its
    id only, and never reaches the client."""
    url, process = demo
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=DEMO_TOKEN, max_retries=0)
    expected = f"Hello from the aigw demo gateway: client demo, key {_key_id('sk-demo-ok')}."
    for _ in range(2):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[])
        assert reply.choices[0].message.content == expected
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == expected
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "gpt-4o"]
    process.terminate()
    stdout, stderr = process.communicate(timeout=30)
    assert f"aigw: openai key {_key_id(RATE_LIMITED_KEY)} got 429" in stderr
    assert "aigw dev: stopped" in stdout
    for secret in (DEMO_TOKEN, RATE_LIMITED_KEY, "sk-demo-ok"):
        assert secret not in stderr


def test_demo_fails_over_on_about_every_other_request(
    demo: tuple[str, subprocess.Popen[str]],
) -> None:
    """Requests a second apart, as a reader pastes them: the rate-limited key is back from its
    rest each time, so at least every other request shows a failover in the log."""
    url, process = demo
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=DEMO_TOKEN, max_retries=0)
    for _ in range(4):
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
        time.sleep(1.1)
    process.terminate()
    _, stderr = process.communicate(timeout=30)
    assert stderr.count(f"aigw: openai key {_key_id(RATE_LIMITED_KEY)} got 429") >= 2


def test_demo_streams_usage_when_asked(demo: tuple[str, subprocess.Popen[str]]) -> None:
    """`stream_options.include_usage` ends the stream with a usage chunk, as OpenAI's does; a
    stream that did not ask for it has none."""
    url, _ = demo
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=DEMO_TOKEN, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *answer, last = chunks
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (1, 12)
    assert all(chunk.usage is None and chunk.choices for chunk in answer)
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=[], stream=True)
    assert all(chunk.usage is None and chunk.choices for chunk in plain)


def test_demo_banner_names_the_rate_limited_key_by_its_id() -> None:
    """The banner says which key id the failover log lines will name."""
    banner = demo_banner("http://127.0.0.1:8787")
    [line] = [line for line in banner.splitlines() if "429" in line]
    assert f"key {_key_id(RATE_LIMITED_KEY)} ({RATE_LIMITED_KEY})" in line


def test_demo_serves_the_anthropic_sdk(demo: tuple[str, subprocess.Popen[str]]) -> None:
    """The Anthropic route works with the same token, plain and streamed."""
    url, _ = demo
    client = anthropic.Anthropic(base_url=f"{url}/anthropic", api_key=DEMO_TOKEN, max_retries=0)
    expected = f"Hello from the aigw demo gateway: client demo, key {_key_id('sk-ant-demo-ok')}."
    message = client.messages.create(model="claude-demo", max_tokens=16, messages=[])
    assert message.content[0].type == "text" and message.content[0].text == expected
    with client.messages.stream(model="claude-demo", max_tokens=16, messages=[]) as stream:
        assert "".join(stream.text_stream) == expected


def test_demo_refuses_a_wrong_token(demo: tuple[str, subprocess.Popen[str]]) -> None:
    """The demo is the real Worker: a token that is not the demo's gets 401 from it."""
    url, _ = demo
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="not-the-demo-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert refused.value.code == "invalid_client_token"


@pytest.mark.parametrize("extra", [["--stack", "dev"], ["--upstream", "http://127.0.0.1:1"]])
def test_demo_refuses_settings_of_its_own(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--demo brings its own settings, secrets and gateway; mixing in others is one clear error."""
    assert main(["dev", "--demo", "--port", "0", *extra]) == 1
    err = capsys.readouterr().err
    message = "--demo brings its own settings, secrets and gateway; drop"
    assert err == f"aigw dev: error: {message} {extra[0]}\n"


def test_demo_gateway_refuses_unknown_keys_and_routes() -> None:
    """The stand-in answers only the demo keys and the routes it plays."""
    with demo_gateway() as url:
        assert (
            httpx.get(f"{url}/openai/models", headers={"authorization": "Bearer x"}).status_code
            == 401
        )
        limited = httpx.get(
            f"{url}/openai/models", headers={"authorization": f"Bearer {RATE_LIMITED_KEY}"}
        )
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
        other = httpx.get(f"{url}/openai/files", headers={"authorization": "Bearer sk-demo-ok"})
        assert other.status_code == 404
