"""A loopback collector of the Worker's Analytics Engine data points, for `aigw dev` and the tests.

workerd (with `--experimental`) plays an `analyticsEngine` binding by POSTing each data point as
JSON to the service the binding names (workerd's src/workerd/server/server.c++ `writeLogfwdr`;
the shape is its src/workerd/api/analytics-engine.capnp `AnalyticsEngineEvent` in capnp's JSON
codec: `Data` fields as arrays of bytes, `Int64` fields as decimal text). This server receives
them and keeps each as the row the Analytics Engine SQL API would show (`timestamp`,
`_sample_interval`, `index1`, `blob1`..`blob20`, `double1`..`double20`), optionally appending
it to a JSONL file so that a user can see what the Worker records.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

COLUMNS = 20
"""Blobs and doubles a data point may have (workerd's MAX_ARRAY_MEMBERS)."""
MAX_POINT_BYTES = 64 * 1024
"""A POST larger than this is no data point of workerd's (blobs are at most 16 KB)."""


@dataclass
class LocalAnalytics:
    """The points received so far, as rows of the dataset's table, oldest first."""

    dataset: str
    jsonl: Path | None = None
    """Where each row is also appended as one JSON line, when set."""
    port: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, point: dict[str, Any]) -> dict[str, Any]:
        """Keep one point workerd posted; returns its row."""
        row = as_row(point, self.dataset)
        with self.lock:
            self.rows.append(row)
            if self.jsonl is not None:
                with self.jsonl.open("a", encoding="utf-8") as file:
                    file.write(json.dumps(row, ensure_ascii=False) + "\n")
        return row

    def snapshot(self) -> list[dict[str, Any]]:
        """A copy of the rows received so far."""
        with self.lock:
            return list(self.rows)


def as_row(point: dict[str, Any], dataset: str) -> dict[str, Any]:
    """A posted `AnalyticsEngineEvent` as the SQL API's row of it (unsampled: interval 1)."""
    nanoseconds = int(point.get("timestamp") or 0)
    moment = datetime.fromtimestamp(nanoseconds / 1e9, UTC) if nanoseconds else datetime.now(UTC)
    row: dict[str, Any] = {
        "dataset": dataset,
        "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "_sample_interval": 1,
        "index1": _text(point.get("index1")),
    }
    for number in range(1, COLUMNS + 1):
        row[f"blob{number}"] = _text(point.get(f"blob{number}"))
    for number in range(1, COLUMNS + 1):
        row[f"double{number}"] = float(point.get(f"double{number}") or 0.0)
    return row


def _text(value: object) -> str:
    """A capnp `Data` field (a list of bytes in JSON) as text; absent is ""."""
    if isinstance(value, list):
        return bytes(int(byte) & 0xFF for byte in value).decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sink: LocalAnalytics


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the rows are the record."""

    def do_POST(self) -> None:
        """One data point from workerd."""
        length = int(self.headers.get("content-length") or 0)
        if not 0 < length <= MAX_POINT_BYTES:
            self._answer(400)
            return
        try:
            point = json.loads(self.rfile.read(length))
        except ValueError:
            self._answer(400)
            return
        if not isinstance(point, dict):
            self._answer(400)
            return
        self.server.sink.add(point)
        self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


@contextmanager
def collecting(dataset: str, jsonl: Path | None = None) -> Iterator[LocalAnalytics]:
    """Receive data points on a free loopback port (the sink's `port`) until the block ends."""
    sink = LocalAnalytics(dataset=dataset, jsonl=jsonl)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.sink = sink
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
