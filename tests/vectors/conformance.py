"""The conformance cases in tests/vectors/*.json: loading them, and checking one exchange's outcome.

A case holds settings overrides, the Worker's bindings and a list of exchanges, all in one isolate.
Each exchange is a client request, the upstream's scripted answers in order, and what the client
and the upstream must see. The Python model and the rendered Worker in workerd run the same cases.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from infra.providers import CLIENT_TOKENS
from infra.settings import Settings, load
from infra.worker.config import ClientRequest, UpstreamFailure, UpstreamResponse, WorkerConfig

VECTORS = Path(__file__).parent
ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
DEFAULT_PROVIDERS = ("openai", "anthropic", "google-ai-studio")
DEFAULT_BINDINGS = {
    "OPENAI_API_KEYS": "sk-test-a,sk-test-b,sk-test-c",
    "ANTHROPIC_API_KEYS": "sk-ant-test-a sk-ant-test-b",
    "GOOGLE_AI_STUDIO_API_KEYS": "goog-test-a\ngoog-test-b",
    "CLIENT_TOKENS": "laptop:tok-test-laptop-01, ci:tok-test-ci-000002",
    "GATEWAY_TOKEN": "gw-test-token-1",
}
"""Short, obvious fakes; a case overrides single bindings (null removes one)."""
RELATIVE_TIME = re.compile(r"<now([+-][0-9]+)s>")
"""A settings string `<now-2s>` is the moment 2 s before the case's settings are read: for an
expiry an instant away, the Worker's real clock against it (the model's clock is real too)."""


@dataclass(frozen=True)
class Exchange:
    """One client request, the upstream's answers to it, and what must be seen."""

    request: ClientRequest
    chunked: bool
    """Send the body with chunked transfer encoding (no content-length) in workerd."""
    upstream: list[UpstreamResponse | UpstreamFailure]
    response: Mapping[str, Any]
    attempts: list[Mapping[str, Any]]


@dataclass(frozen=True)
class Case:
    """One conformance case: a fresh isolate and the exchanges it goes through, in order."""

    name: str
    doc: str
    raw_settings: Mapping[str, object]
    """The `aigw:` configuration, `<now±Ns>` strings still unresolved (see `settings`)."""
    bindings: Mapping[str, str]
    rotation_offset: int
    upstream_timeout_ms: int | None
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        """The case's settings, each `<now±Ns>` read as that many seconds from now."""
        return load(_resolved(self.raw_settings, datetime.now(UTC)), "vectors")[0]

    def config(self, gateway_url: str | None = None) -> WorkerConfig:
        """The Worker configuration this case runs with."""
        extra: dict[str, Any] = {}
        if self.upstream_timeout_ms is not None:
            extra["upstream_timeout_ms"] = self.upstream_timeout_ms
        return WorkerConfig.from_settings(
            self.settings,
            gateway_url=gateway_url,
            rotation_offset=self.rotation_offset,
            **extra,
        )

    def secrets(self) -> list[str]:
        """Every key and token value in the bindings (none may reach a client)."""
        values = []
        for name, value in self.bindings.items():
            for entry in value.replace(",", " ").split():
                is_token = name.startswith(CLIENT_TOKENS)
                values.append(entry.partition(":")[2] if is_token else entry)
        return [value for value in values if value]

    def client_tokens(self) -> list[str]:
        """The client token values, numbered parts included (none may reach the upstream)."""
        sources = [value for name, value in self.bindings.items() if name.startswith(CLIENT_TOKENS)]
        return [entry.partition(":")[2] for entry in " ".join(sources).replace(",", " ").split()]


@dataclass(frozen=True)
class Observed:
    """What a client or the upstream actually saw: lower-case header names."""

    status_or_method: int | str
    target: str
    headers: Mapping[str, str]
    body: bytes


def load_cases() -> list[Case]:
    """Every case of every vectors file, in file then case order."""
    cases = []
    for path in sorted(VECTORS.glob("*.json")):
        for raw in json.loads(path.read_text(encoding="utf-8")):
            cases.append(_case(path.stem, raw))
    names = [case.name for case in cases]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"duplicate case names: {sorted(duplicates)}"
    return cases


CASE_FIELDS = {
    "name",
    "doc",
    "providers",
    "settings",
    "bindings",
    "rotation_offset",
    "upstream_timeout_ms",
    "exchanges",
}
EXCHANGE_FIELDS = {"request", "upstream", "response", "attempts"}
REQUEST_FIELDS = {"method", "target", "headers", "body", "body_base64", "chunked"}
RESPONSE_FIELDS = {"status", "headers", "header_lists", "body", "json", "error"}
ATTEMPT_FIELDS = {"method", "target", "headers", "absent", "metadata", "body"}


def _known(where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    """A misspelt field would silently check nothing: refuse it."""
    unknown = sorted(set(raw) - allowed)
    assert not unknown, f"{where}: unknown fields {unknown}"


def _case(topic: str, raw: Mapping[str, Any]) -> Case:
    where = f"{topic}/{raw.get('name')}"
    _known(where, raw, CASE_FIELDS)
    for step in raw["exchanges"]:
        _known(where, step, EXCHANGE_FIELDS)
        _known(where, step["request"], REQUEST_FIELDS)
        _known(where, step["response"], RESPONSE_FIELDS)
        for attempt in step.get("attempts", []):
            _known(where, attempt, ATTEMPT_FIELDS)
    providers = raw.get("providers", DEFAULT_PROVIDERS)
    raw_settings = {
        "accountId": ACCOUNT_ID,
        "providerKeys": {slug: ["placeholder"] for slug in providers},
        **raw.get("settings", {}),
    }
    load(_resolved(raw_settings, datetime.now(UTC)), "vectors")  # a bad case fails at load
    bindings = {**DEFAULT_BINDINGS, **raw.get("bindings", {})}
    return Case(
        name=f"{topic}/{raw['name']}",
        doc=raw["doc"],
        raw_settings=raw_settings,
        bindings={name: value for name, value in bindings.items() if value is not None},
        rotation_offset=raw.get("rotation_offset", 0),
        upstream_timeout_ms=raw.get("upstream_timeout_ms"),
        exchanges=[_exchange(step) for step in raw["exchanges"]],
    )


def _resolved(value: object, now: datetime) -> object:
    """`value` with every `<now±Ns>` string replaced by that moment (ISO 8601, UTC)."""
    if isinstance(value, str):
        match = RELATIVE_TIME.fullmatch(value)
        return value if match is None else (now + timedelta(seconds=int(match[1]))).isoformat()
    if isinstance(value, Mapping):
        return {key: _resolved(item, now) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, now) for item in value]
    return value


def _exchange(raw: Mapping[str, Any]) -> Exchange:
    request = raw["request"]
    return Exchange(
        request=ClientRequest(
            method=request.get("method", "POST"),
            target=request["target"],
            headers=request.get("headers", {}),
            # Bytes that are not UTF-8 (a body with invalid UTF-8) are written in base64.
            body=b64decode(request["body_base64"])
            if "body_base64" in request
            else request.get("body", "").encode(),
        ),
        chunked=request.get("chunked", False),
        upstream=[_answer(answer) for answer in raw.get("upstream", [])],
        response=raw["response"],
        attempts=raw.get("attempts", []),
    )


def _answer(raw: str | Mapping[str, Any]) -> UpstreamResponse | UpstreamFailure:
    if raw in ("network-error", "timeout"):
        return cast(UpstreamFailure, raw)
    assert isinstance(raw, Mapping), f"unknown upstream answer {raw!r}"
    return UpstreamResponse(
        status=raw["status"],
        headers={name.lower(): value for name, value in raw.get("headers", {}).items()},
        body=raw.get("body", "").encode(),
    )


def check_response(case: Case, exchange: Exchange, seen: Observed) -> None:
    """The client saw what the case expects, and no secret."""
    expected = exchange.response
    assert seen.status_or_method == expected["status"], f"status: {seen.body[:300]!r}"
    _check_headers(expected.get("headers", {}), seen.headers, "response")
    for name, items in expected.get("header_lists", {}).items():
        listed = [item.strip() for item in seen.headers.get(name, "").split(",")]
        missing = [item for item in items if item not in listed]
        assert not missing, f"response header {name} lacks {missing}: {listed}"
    if "body" in expected:
        assert seen.body.decode() == expected["body"]
    if "json" in expected:
        assert json.loads(seen.body) == expected["json"]
    if "error" in expected:
        document = json.loads(seen.body)
        assert set(document) == {"error"}, document
        assert set(document["error"]) == {"message", "type", "code"}, document
        assert isinstance(document["error"]["message"], str)
        for name, value in expected["error"].items():
            assert document["error"][name] == value, f"error.{name}: {document}"
    shown = seen.body.decode(errors="replace") + json.dumps(dict(seen.headers))
    leaked = [secret for secret in case.secrets() if secret in shown]
    assert not leaked, f"the client saw secrets {leaked}"


def check_attempts(case: Case, exchange: Exchange, attempts: list[Observed]) -> None:
    """The upstream saw exactly the attempts the case expects, and never a client token."""
    got = [(a.status_or_method, a.target, a.headers.get("authorization")) for a in attempts]
    assert len(attempts) == len(exchange.attempts), f"attempts: {got}"
    for number, (expected, seen) in enumerate(zip(exchange.attempts, attempts, strict=True)):
        where = f"attempt {number + 1}"
        assert seen.status_or_method == expected.get("method", "POST"), where
        assert seen.target == expected["target"], where
        _check_headers(expected.get("headers", {}), seen.headers, where)
        for name in expected.get("absent", []):
            assert name not in seen.headers, f"{where}: {name} was forwarded"
        if "metadata" in expected:
            metadata = json.loads(seen.headers["cf-aig-metadata"])
            assert metadata == expected["metadata"], where
        if "body" in expected:
            assert seen.body.decode() == expected["body"], where
        shown = seen.target + json.dumps(dict(seen.headers))
        leaked = [token for token in case.client_tokens() if token and token in shown]
        assert not leaked, f"{where}: client tokens went upstream: {leaked}"


def _check_headers(expected: Mapping[str, str | None], seen: Mapping[str, str], where: str) -> None:
    for name, value in expected.items():
        if value is None:
            assert name not in seen, f"{where}: header {name} should be absent"
        else:
            assert seen.get(name) == value, f"{where}: header {name}: {seen.get(name)!r}"
