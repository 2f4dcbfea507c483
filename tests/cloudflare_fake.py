"""A loopback server playing the Cloudflare API (and the AI Gateway) for the CLI and infra tests."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.analytics_stand_in import AnalyticsEngine, SqlRefused, graphql_answer

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
GATEWAY_ID = "aigw-dev"
API_TOKEN = "cf-test-token"
WORKERS_SUBDOMAIN = "example-team"
"""The account's workers.dev subdomain (`<worker>.example-team.workers.dev`)."""
GATEWAY_TOKEN = "gw-test-token"
API_PREFIX = "/client/v4"
GATEWAY_PREFIX = "/gateway/v1"
MAX_PER_PAGE = 50  # the logs endpoint's largest page
HTML_ERROR_PAGE = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"


def stamp(moment: datetime) -> str:
    """A log's `created_at` as the API writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeCloudflare:
    """State of the fake API: one account, its gateways and their logs; tests change it freely."""

    url: str = ""
    token: str = API_TOKEN
    token_owner: str = "user"
    """`user` or `account`: which verify endpoint knows the token."""
    token_status: str = "active"
    account_readable: bool = True
    """False: the token lacks a permission that reads account details (403 there)."""
    gateways: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error_page_status: int | None = None
    """When set, every API call gets this status with an HTML page, as an edge error would."""
    health_status: int = 200
    """What `GET /healthz` answers (the server doubles as a Worker for doctor's --url)."""
    gateway_logs_requests: bool = True
    """False: the gateway answers but writes no log (as with collect logs off)."""
    gateway_sends_log_id: bool = True
    """False: the `cf-aig-log-id` header is missing from gateway responses."""
    subdomain_status: int = 200
    """What `GET /accounts/<id>/workers/subdomain` answers; not 200: that status, no subdomain."""
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    """Path below `API_PREFIX` and query of every API call, in order."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """Path below `API_PREFIX` and authorization header of every API call, in order."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    engine: AnalyticsEngine | None = None
    """The Analytics Engine datasets the SQL API reads, made on first use (chDB)."""
    sql: list[str] = field(default_factory=list)
    """Every query the SQL API was sent, in order."""
    graphql: list[dict[str, Any]] = field(default_factory=list)
    """Every GraphQL document (query and variables) sent, in order."""

    @property
    def analytics(self) -> AnalyticsEngine:
        """The SQL API's datasets (chDB starts on first use)."""
        with self.lock:
            if self.engine is None:
                self.engine = AnalyticsEngine()
            return self.engine

    @property
    def api_url(self) -> str:
        """What `CLOUDFLARE_BASE_URL` points at."""
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The fake gateway's base URL for the account's default gateway."""
        return f"{self.url}{GATEWAY_PREFIX}/{ACCOUNT_ID}/{GATEWAY_ID}"

    def add_gateway(self, gateway_id: str = GATEWAY_ID, **settings: Any) -> dict[str, Any]:
        """A gateway as the API returns it, with aigw's defaults unless overridden."""
        gateway = {
            "id": gateway_id,
            "cache_invalidate_on_update": True,
            "cache_ttl": 0,
            "collect_logs": True,
            "created_at": "2026-11-01T00:00:00Z",
            "modified_at": "2026-11-01T00:00:00Z",
            "rate_limiting_interval": 0,
            "rate_limiting_limit": 0,
            "rate_limiting_technique": "fixed",
            "authentication": True,
            **settings,
        }
        self.gateways[gateway_id] = gateway
        self.logs.setdefault(gateway_id, [])
        return gateway

    def add_log(
        self,
        created_at: datetime,
        *,
        gateway_id: str = GATEWAY_ID,
        model: str = "gpt-4o-mini",
        provider: str = "openai",
        success: bool = True,
        status_code: int = 200,
        cached: bool = False,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost: float = 0.0,
        client: str | None = "laptop",
        key: str | None = "1a2b3c4d",
        path: str = "chat/completions",
    ) -> dict[str, Any]:
        """A logged request, with the `cf-aig-metadata` the Worker sets."""
        metadata = {}
        if client is not None:
            metadata["client"] = client
        if key is not None:
            metadata["keyId"] = key
        with self.lock:
            log = {
                "id": f"log{len(self.logs[gateway_id]) + 1:05d}",
                "cached": cached,
                "created_at": stamp(created_at),
                "duration": 120,
                "model": model,
                "path": path,
                "provider": provider,
                "success": success,
                "status_code": status_code,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "cost": cost,
                "metadata": json.dumps(metadata) if metadata else None,
                "request_type": "chat",
            }
            self.logs[gateway_id].append(log)
        return log

    def list_calls(self) -> list[dict[str, str]]:
        """The query of every logs-list call, in order."""
        return [query for path, query in self.calls if path.endswith("/logs")]


def _envelope(result: Any, **extra: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result, **extra}


def _failure(code: int, message: str) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeCloudflare


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any, **headers: str) -> None:
        self._send(status, json.dumps(document).encode(), "application/json", **headers)

    def do_GET(self) -> None:
        """The Cloudflare API endpoints aigw uses, and the Worker stand-in's health check."""
        fake = self.server.fake
        split = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(split.query).items()}
        if split.path == "/healthz":
            self._json(fake.health_status, {"ok": fake.health_status == 200})
            return
        if not split.path.startswith(API_PREFIX):
            self._json(404, {"error": "not found"})
            return
        path = split.path[len(API_PREFIX) :]
        presented = self.headers.get("authorization", "")
        with fake.lock:
            fake.calls.append((path, query))
            fake.requests.append((path, presented))
        if fake.error_page_status is not None:
            self._send(fake.error_page_status, HTML_ERROR_PAGE, "text/html")
            return
        authorized = presented == f"Bearer {fake.token}"
        parts = path.strip("/").split("/")
        if parts == ["user", "tokens", "verify"]:
            if not authorized or fake.token_owner != "user":
                self._json(401, _failure(1000, "Invalid API Token"))
                return
            self._json(
                200,
                _envelope({"id": "f267e341f3dd4697bd3b9f71dd96247f", "status": fake.token_status}),
            )
            return
        if not authorized:
            self._json(403, _failure(10000, "Authentication error"))
            return
        if parts[0] != "accounts" or len(parts) < 2 or parts[1] != ACCOUNT_ID:
            self._json(404, _failure(7003, "Could not route to the requested resource"))
            return
        rest = parts[2:]
        if rest == []:
            if not fake.account_readable:
                self._json(403, _failure(9109, "Unauthorized to access requested resource"))
                return
            self._json(
                200, _envelope({"id": ACCOUNT_ID, "name": "Example Account", "type": "standard"})
            )
        elif rest == ["tokens", "verify"]:
            if fake.token_owner != "account":
                self._json(401, _failure(1000, "Invalid API Token"))
                return
            self._json(
                200,
                _envelope({"id": "a267e341f3dd4697bd3b9f71dd96247f", "status": fake.token_status}),
            )
        elif rest == ["workers", "subdomain"]:
            if fake.subdomain_status != 200:
                message = "workers.dev subdomain not found"
                self._json(fake.subdomain_status, _failure(10007, message))
                return
            self._json(200, _envelope({"subdomain": WORKERS_SUBDOMAIN}))
        elif rest[:2] == ["ai-gateway", "gateways"] and len(rest) >= 3:
            gateway = fake.gateways.get(rest[2])
            if gateway is None:
                self._json(404, _failure(7002, "Not Found"))
            elif len(rest) == 3:
                self._json(200, _envelope(gateway))
            elif rest[3:] == ["logs"]:
                self._list_logs(rest[2], query)
            elif len(rest) == 5 and rest[3] == "logs":
                found = [log for log in fake.logs[rest[2]] if log["id"] == rest[4]]
                if found:
                    self._json(200, _envelope(found[0]))
                else:
                    self._json(404, _failure(7002, "Not Found"))
            else:
                self._json(404, _failure(7003, "Could not route to the requested resource"))
        else:
            self._json(404, _failure(7003, "Could not route to the requested resource"))

    def _list_logs(self, gateway_id: str, query: dict[str, str]) -> None:
        fake = self.server.fake
        try:
            page = int(query.get("page", "1"))
            per_page = int(query.get("per_page", "20"))
            start = _parse_time(query["start_date"]) if "start_date" in query else None
            end = _parse_time(query["end_date"]) if "end_date" in query else None
        except ValueError as error:
            self._json(400, _failure(7001, f"Invalid query: {error}"))
            return
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            self._json(400, _failure(7001, f"per_page must be between 1 and {MAX_PER_PAGE}"))
            return
        with fake.lock:
            logs = list(fake.logs[gateway_id])
        # Both ends of the window are inclusive, compared at the stored (millisecond) precision.
        selected = [
            log
            for log in logs
            if (start is None or _parse_time(log["created_at"]) >= start)
            and (end is None or _parse_time(log["created_at"]) <= end)
        ]
        descending = query.get("order_by_direction", query.get("direction", "desc")) == "desc"
        selected.sort(key=lambda log: (log["created_at"], log["id"]), reverse=descending)
        chunk = selected[(page - 1) * per_page : page * per_page]
        info = {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(selected),
        }
        self._json(200, _envelope(chunk, result_info=info))

    def do_POST(self) -> None:
        """The analytics APIs, the AI Gateway's OpenAI chat endpoint, and a Worker stand-in."""
        fake = self.server.fake
        split = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if split.path.startswith(API_PREFIX + "/"):
            self._analytics(split.path[len(API_PREFIX) :], body)
            return
        if split.path.startswith(GATEWAY_PREFIX + "/"):
            parts = split.path[len(GATEWAY_PREFIX) + 1 :].split("/")
            if len(parts) < 3 or parts[0] != ACCOUNT_ID or parts[1] not in fake.gateways:
                self._json(404, {"error": "no such gateway"})
                return
            gateway = fake.gateways[parts[1]]
            if (
                gateway["authentication"]
                and self.headers.get("cf-aig-authorization") != f"Bearer {GATEWAY_TOKEN}"
            ):
                self._json(401, {"error": {"message": "gateway authentication failed"}})
                return
            self._complete(parts[1], "/".join(parts[3:]), body, self.headers.get("cf-aig-metadata"))
            return
        self._json(404, {"error": {"message": "not found"}})

    def _analytics(self, path: str, body: bytes) -> None:
        """`POST /accounts/<id>/analytics_engine/sql` (chDB) and `POST /graphql`."""
        fake = self.server.fake
        presented = self.headers.get("authorization", "")
        with fake.lock:
            fake.calls.append((path, {}))
            fake.requests.append((path, presented))
        if fake.error_page_status is not None:
            self._send(fake.error_page_status, HTML_ERROR_PAGE, "text/html")
            return
        if presented != f"Bearer {fake.token}":
            self._json(403, _failure(10000, "Authentication error"))
            return
        if path == f"/accounts/{ACCOUNT_ID}/analytics_engine/sql":
            sql = body.decode("utf-8", "replace")
            with fake.lock:
                fake.sql.append(sql)
            try:
                answer = fake.analytics.query(sql)
            except SqlRefused as error:
                # The real API answers a bad query with a plain-text explanation.
                self._send(422, str(error).encode(), "text/plain")
                return
            self._send(200, answer.encode(), "application/json")
        elif path == "/graphql":
            document = json.loads(body or b"{}")
            with fake.lock:
                fake.graphql.append(document)
                logs = [
                    {**log, "gateway_id": gateway_id}
                    for gateway_id, entries in fake.logs.items()
                    for log in entries
                ]
            try:
                self._json(200, graphql_answer(document, logs))
            except ValueError as error:
                self._json(200, {"data": None, "errors": [{"message": str(error)}]})
        else:
            self._json(404, _failure(7003, "Could not route to the requested resource"))

    def _complete(self, gateway_id: str, path: str, body: bytes, metadata: str | None) -> None:
        fake = self.server.fake
        request = json.loads(body or b"{}")
        model = request.get("model", "")
        headers: dict[str, str] = {}
        if fake.gateway_logs_requests:
            log = fake.add_log(
                datetime.now(UTC),
                gateway_id=gateway_id,
                model=model,
                tokens_in=9,
                tokens_out=1,
                cost=0.000002,
                client=None,
                key=None,
                path=path,
            )
            log["metadata"] = metadata
            if fake.gateway_sends_log_id:
                headers["cf_aig_log_id"] = log["id"]
        if not request.get("stream"):
            answer = {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "pong"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
            }
            self._json(200, answer, **headers)
            return
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
            {"choices": [{"index": 0, "delta": {"content": "po"}}]},
            {"choices": [{"index": 0, "delta": {"content": "ng"}, "finish_reason": "stop"}]},
        ]
        events = b"".join(
            b"data: " + json.dumps({"model": model, **c}).encode() + b"\n\n" for c in chunks
        )
        self._send(200, events + b"data: [DONE]\n\n", "text/event-stream", **headers)


def key_id(key: str) -> str:
    """The Worker's public id of a pool key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@contextmanager
def serving(fake: FakeCloudflare) -> Iterator[FakeCloudflare]:
    """Serve `fake` on a free loopback port (setting its `url`) until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll keeps shutdown quick: the infra tests start one server per test.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
