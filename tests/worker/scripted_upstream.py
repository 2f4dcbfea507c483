"""A loopback upstream that answers the Worker from a per-case script and records what it saw."""

from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from infra.proxy import UpstreamFailure, UpstreamResponse

PREFIX = "/gw"
"""The path the Worker is rendered to use as its gateway URL; stripped from what is recorded."""
HOLD_SECONDS = 10.0
"""The longest a `timeout` answer holds its connection (the Worker gives up far sooner)."""


@dataclass(frozen=True)
class Seen:
    """One request as it reached the upstream: target below the gateway URL, lower-case headers."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class ScriptedUpstream:
    """Answers requests, in order, with scripted responses, dropped connections or silence."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._answers: deque[UpstreamResponse | UpstreamFailure] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.upstream = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL to render as the Worker's gateway URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{PREFIX}"

    def script(self, answers: list[UpstreamResponse | UpstreamFailure]) -> None:
        """Forget what was seen and answer the next requests with `answers`, in order."""
        with self._lock:
            self.seen.clear()
            self._answers = deque(answers)
            # Connections held for the previous script give up now.
            self._release.set()
            self._release = threading.Event()

    def next_answer(self, seen: Seen) -> UpstreamResponse | UpstreamFailure | None:
        """Record `seen` and take the next scripted answer (`None` once the script is spent)."""
        with self._lock:
            self.seen.append(seen)
            return self._answers.popleft() if self._answers else None

    def hold(self) -> None:
        """Keep a connection unanswered until the next script or `HOLD_SECONDS` have passed."""
        with self._lock:
            release = self._release
        release.wait(HOLD_SECONDS)

    def __enter__(self) -> ScriptedUpstream:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=HOLD_SECONDS)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: ScriptedUpstream


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reports what matters."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            lowered = name.lower()
            headers[lowered] = f"{headers[lowered]}, {value}" if lowered in headers else value
        target = self.path.removeprefix(PREFIX)
        seen = Seen(self.command, target, headers, self._read_body())
        answer = self.server.upstream.next_answer(seen)
        self.close_connection = True
        if answer is None:
            self._respond(UpstreamResponse(599, {}, b"unscripted request"))
        elif answer == "network-error":
            self._drop()
        elif answer == "timeout":
            self.server.upstream.hold()
            self._drop()
        else:
            self._respond(answer)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _respond(self, answer: UpstreamResponse) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(answer.body)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(answer.body)
        self.wfile.flush()

    def _drop(self) -> None:
        """Reset the connection without an answer: the Worker sees a network error."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The socket closes (with a reset) only once its file objects are closed too.
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        self._dropped = True

    def finish(self) -> None:
        if not getattr(self, "_dropped", False):
            super().finish()
