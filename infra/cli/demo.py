"""`aigw dev --demo`: a stand-in AI Gateway on loopback with canned answers, demo keys and token.

Nothing here reaches a provider or Cloudflare: the demo gateway answers OpenAI chat completions,
OpenAI's model list and Anthropic messages itself (plain and streamed, with usage when asked), and
always refuses one of the two OpenAI demo keys with a 429, so the Worker's failover shows. The keys
and the token are demo values, printed on purpose; they open nothing anywhere else.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.providers import CLIENT_TOKENS, PROVIDERS
from infra.settings import Settings, load
from infra.worker.pool import key_id

DEMO_CLIENT = "demo"
DEMO_TOKEN = "demo-token-not-a-secret"
RATE_LIMITED_KEY = "sk-demo-rate-limited"
"""The demo gateway answers every request made with this key with a 429."""
DEMO_KEYS: Mapping[str, tuple[str, ...]] = {
    "openai": (RATE_LIMITED_KEY, "sk-demo-ok"),
    "anthropic": ("sk-ant-demo-ok",),
}
RETRY_AFTER_SECONDS = 1
"""What the 429 asks for: the Worker rests the key that long, then tries it again. One second,
so that a reader pasting requests by hand sees the failover on about every other one."""
DEMO_ACCOUNT_ID = "0" * 32
DEMO_STACK = "demo"
DEMO_MODEL = "gpt-4o-mini"
_DEMO_REQUEST = {"model": DEMO_MODEL, "messages": [{"role": "user", "content": "Hello"}]}


def demo_settings() -> Settings:
    """The demo's settings: a stack `demo` with every default and the demo providers."""
    raw = {"accountId": DEMO_ACCOUNT_ID, "providerKeys": {k: list(v) for k, v in DEMO_KEYS.items()}}
    settings, _ = load(raw, DEMO_STACK)
    return settings


def demo_bindings() -> dict[str, str]:
    """The Worker's secret bindings for the demo: the demo key pools and the demo client token."""
    bindings = {PROVIDERS[slug].binding: ",".join(keys) for slug, keys in DEMO_KEYS.items()}
    bindings[CLIENT_TOKENS] = f"{DEMO_CLIENT}:{DEMO_TOKEN}"
    return bindings


def demo_banner(worker_url: str) -> str:
    """What `aigw dev --demo` prints below its usual lines: the demo secrets and what to try."""
    pools = "; ".join(f"{slug}: {', '.join(keys)}" for slug, keys in DEMO_KEYS.items())
    return (
        f"  demo keys        {pools}\n"
        f"  rate-limited     key {key_id(RATE_LIMITED_KEY)} ({RATE_LIMITED_KEY}) answers 429 "
        f"(Retry-After: {RETRY_AFTER_SECONDS}): about every other request fails over from it\n"
        f"  client token     {DEMO_TOKEN} (client {DEMO_CLIENT})\n"
        "\n"
        "Try it from another terminal, with curl:\n"
        "\n"
        f"curl {worker_url}/v1/chat/completions \\\n"
        f"  -H 'Authorization: Bearer {DEMO_TOKEN}' -H 'Content-Type: application/json' \\\n"
        f"  -d '{json.dumps(_DEMO_REQUEST)}'\n"
        "\n"
        "or with the OpenAI SDK (pip install openai), in Python:\n"
        "\n"
        "from openai import OpenAI\n"
        "\n"
        f'client = OpenAI(base_url="{worker_url}/v1", api_key="{DEMO_TOKEN}")\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{DEMO_MODEL}", messages=[{{"role": "user", "content": "Hello"}}]\n'
        ")\n"
        "print(reply.choices[0].message.content)\n"
    )


@contextmanager
def demo_gateway() -> Iterator[str]:
    """Serve the demo gateway on 127.0.0.1 (a free port) until the block exits; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DemoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="aigw-demo-gateway", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _DemoHandler(BaseHTTPRequestHandler):
    """One request to the demo gateway, answered as the provider behind AI Gateway would."""

    protocol_version = "HTTP/1.1"
    server_version = "aigw-demo-gateway"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: `aigw dev` prints the Worker's own log lines, which say what happened."""

    def do_GET(self) -> None:
        self._body()
        if not self._key_accepted():
            return
        if self.path.split("?")[0] == "/openai/models":
            models = [{"id": model, "object": "model"} for model in (DEMO_MODEL, "gpt-4o")]
            self._json(200, {"object": "list", "data": models})
        else:
            self._not_found()

    def do_POST(self) -> None:
        body = self._body()
        if not self._key_accepted():
            return
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            self._json(400, _openai_error("the demo gateway expects a JSON object", "invalid_json"))
            return
        model = str(payload.get("model") or DEMO_MODEL)
        text = self._answer_text()
        path = self.path.split("?")[0]
        if path == "/openai/chat/completions":
            if payload.get("stream") is True:
                options = payload.get("stream_options")
                usage = isinstance(options, dict) and options.get("include_usage") is True
                self._stream(_openai_events(model, text, include_usage=usage))
            else:
                self._json(200, _openai_completion(model, text))
        elif path == "/anthropic/v1/messages":
            if payload.get("stream") is True:
                self._stream(_anthropic_events(model, text))
            else:
                self._json(200, _anthropic_message(model, text))
        else:
            self._not_found()

    def do_DELETE(self) -> None:
        self._body()
        self._not_found()

    def _body(self) -> bytes:
        """The request body, whether it came with a length or in chunks."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return body
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _key_accepted(self) -> bool:
        """Answer for the key itself when it is the rate-limited one or not a demo key."""
        key = self.headers.get("x-api-key") or ""
        authorization = self.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if key == RATE_LIMITED_KEY:
            error = _openai_error("this demo key is always rate-limited", "rate_limit_exceeded")
            self._json(429, error, {"retry-after": str(RETRY_AFTER_SECONDS)})
            return False
        if key not in {key for keys in DEMO_KEYS.values() for key in keys}:
            self._json(401, _openai_error("not a demo key", "invalid_api_key"))
            return False
        return True

    def _answer_text(self) -> str:
        """Says who asked through which key, from the metadata the Worker sends the gateway."""
        try:
            metadata = json.loads(self.headers.get("cf-aig-metadata") or "{}")
        except ValueError:
            metadata = {}
        client = metadata.get("client", "?") if isinstance(metadata, dict) else "?"
        key_id = metadata.get("keyId", "?") if isinstance(metadata, dict) else "?"
        return f"Hello from the aigw demo gateway: client {client}, key {key_id}."

    def _json(self, status: int, body: object, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Iterator[bytes]) -> None:
        """Server-sent events, one HTTP chunk each."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _not_found(self) -> None:
        message = (
            "the demo gateway answers POST /openai/chat/completions, GET /openai/models and "
            "POST /anthropic/v1/messages"
        )
        self._json(404, _openai_error(message, "not_found"))


def _openai_error(message: str, code: str) -> dict[str, object]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _sse(data: object, event: str | None = None) -> bytes:
    prefix = f"event: {event}\n" if event else ""
    text = data if isinstance(data, str) else json.dumps(data)
    return f"{prefix}data: {text}\n\n".encode()


def _openai_completion(model: str, text: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-demo",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 12, "total_tokens": 13},
    }


def _openai_events(model: str, text: str, *, include_usage: bool = False) -> Iterator[bytes]:
    """The answer a word at a time, then a stop chunk and `[DONE]`, as OpenAI streams; asked
    for `stream_options.include_usage`, every chunk has `usage: null` and one more chunk before
    `[DONE]` has no choices and the usage (OpenAI's Chat Completions streaming reference)."""
    base: dict[str, object] = {
        "id": "chatcmpl-demo",
        "object": "chat.completion.chunk",
        "created": 1767225600,
    }
    if include_usage:
        base["usage"] = None
    for number, word in enumerate(text.split(" ")):
        delta = {"content": word if number == 0 else f" {word}"}
        if number == 0:
            delta["role"] = "assistant"
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        yield _sse({**base, "model": model, "choices": [choice]})
    stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield _sse({**base, "model": model, "choices": [stop]})
    if include_usage:
        usage = _openai_completion(model, text)["usage"]
        yield _sse({**base, "model": model, "choices": [], "usage": usage})
    yield _sse("[DONE]")


def _anthropic_message(model: str, text: str) -> dict[str, object]:
    return {
        "id": "msg_demo",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 12},
    }


def _anthropic_events(model: str, text: str) -> Iterator[bytes]:
    """Anthropic's streaming event sequence with the answer a word at a time."""
    start = {**_anthropic_message(model, text), "content": [], "stop_reason": None}
    yield _sse({"type": "message_start", "message": start}, "message_start")
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    yield _sse(block, "content_block_start")
    for number, word in enumerate(text.split(" ")):
        delta = {"type": "text_delta", "text": word if number == 0 else f" {word}"}
        yield _sse(
            {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
        )
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    yield _sse({**end, "usage": {"output_tokens": 12}}, "message_delta")
    yield _sse({"type": "message_stop"}, "message_stop")
