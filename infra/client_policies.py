"""Client policies (`aigw:clients`): their types, reading and checks, their rate limits."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import cast

from infra.providers import PROVIDERS
from infra.setting_forms import (
    CLIENT_POLICY_FIELDS,
    ENDPOINT_METHODS,
    MAX_BUDGET_WINDOW,
    MAX_CLIENT_RATE_LIMIT,
    MAX_ENDPOINT_LENGTH,
    MAX_MODEL_PATTERN_LENGTH,
    MIN_BUDGET_WINDOW,
    OPENAI_CLIENT_ROOT,
    RATE_LIMIT_PERIODS,
    RateTechnique,
)
from infra.setting_values import as_whole, fail, object_fields, show, whole

ALL_CLIENTS = "*"
"""The `clients` entry that is the policy of every client without an entry of its own."""


@dataclass(frozen=True)
class ClientRateLimit:
    """A client's rate limit, enforced by the Worker: `limit` requests per `period` seconds."""

    limit: int
    period: int
    """10 or 60: what a Workers Rate Limiting binding accepts."""


@dataclass(frozen=True)
class Budget:
    """A spend cap enforced by AI Gateway spend limits: `limit` US dollars per `window` seconds."""

    limit: float
    window: int
    technique: RateTechnique = "fixed"
    """`fixed` windows reset every `window` seconds; `sliding` ones look back `window` seconds."""


@dataclass(frozen=True)
class ClientPolicy:
    """What one client may do; `None` means no restriction of that kind (DESIGN §2)."""

    models: tuple[str, ...] | None = None
    """Model names or `*` globs (`*` matches any run of characters) the client may call."""
    providers: tuple[str, ...] | None = None
    """Provider slugs the client may call; each has a key pool."""
    rate_limit: ClientRateLimit | None = None
    budget: Budget | None = None
    expires: datetime | None = None
    """When every token of the client stops working; timezone-aware, in UTC."""
    endpoints: tuple[tuple[str, str], ...] | None = None
    """(method or `*`, path glob) pairs a client with a limit may call besides the inference
    endpoints and model listings aigw knows (DESIGN §2); OpenAI paths as `/v1/...`."""


def rate_limit_binding(rate: ClientRateLimit) -> str:
    """The Worker's Rate Limiting binding for a {limit, period}, e.g. `RATE_LIMIT_100_PER_60S`."""
    return f"RATE_LIMIT_{rate.limit}_PER_{rate.period}S"


_CLIENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_MODEL_PATTERN = re.compile(r"[!-~]+")  # printable ASCII without spaces; `*` is the only wildcard
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ENDPOINT = re.compile(r"(GET|POST|DELETE|\*) (/[!-~]*)")


def read_clients(value: object, providers: tuple[str, ...]) -> Mapping[str, ClientPolicy]:
    """The `clients` policies (`value` decoded), each checked against the providers with keys."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        fail(
            "clients",
            show(value),
            'expected an object of policies such as {"ci": {"models": ["gpt-4o-mini"]}}',
        )
    policies: dict[str, ClientPolicy] = {}
    for name, policy in value.items():
        if name != ALL_CLIENTS:
            client_name("clients", name, also='or "*" (every client without an entry)')
        policies[name] = _policy(f"clients.{name}", policy, providers)
    return MappingProxyType(policies)


def _policy(key: str, value: object, providers: tuple[str, ...]) -> ClientPolicy:
    """One client's policy at `key`; null or {} is a client with no restriction."""
    if value is None:
        return ClientPolicy()
    fields = object_fields(key, value, set(), set(CLIENT_POLICY_FIELDS))
    rate_limit = None
    if fields.get("rateLimit") is not None:
        rate = object_fields(f"{key}.rateLimit", fields["rateLimit"], {"limit", "period"}, set())
        period = rate["period"]
        if as_whole(period) not in RATE_LIMIT_PERIODS:
            fail(
                f"{key}.rateLimit.period",
                show(period),
                "expected 10 or 60 (seconds): the periods Workers Rate Limiting allows",
            )
        rate_limit = ClientRateLimit(
            limit=whole(f"{key}.rateLimit.limit", rate["limit"], 1, MAX_CLIENT_RATE_LIMIT),
            period=whole(f"{key}.rateLimit.period", period, *RATE_LIMIT_PERIODS),
        )
    models = _model_patterns(f"{key}.models", fields.get("models"))
    endpoints = _endpoints(f"{key}.endpoints", fields.get("endpoints"), providers)
    limits = ("models", "providers", "rateLimit", "budget")
    if endpoints is not None and all(fields.get(name) is None for name in limits):
        fail(
            f"{key}.endpoints",
            f"{show(fields['endpoints'])} for a client without a limit",
            "endpoints opens endpoints to a client with models, providers, rateLimit or "
            "budget; a client without any may already call every endpoint",
        )
    return ClientPolicy(
        models=models,
        providers=_provider_list(f"{key}.providers", fields.get("providers"), providers),
        rate_limit=rate_limit,
        budget=read_budget(f"{key}.budget", fields.get("budget")),
        expires=_expiry(f"{key}.expires", fields.get("expires")),
        endpoints=endpoints,
    )


def client_name(key: str, name: str, also: str = "") -> None:
    """Client names become `name:token` entries and gateway metadata: a safe, short alphabet."""
    if not _CLIENT_NAME.fullmatch(name):
        fail(
            key,
            f"client name {name!r}",
            "names are 1-64 letters, digits, '.', '_' or '-'" + (f", {also}" if also else ""),
        )


def read_budget(key: str, value: object) -> Budget | None:
    """A spend cap `{limit, window, technique}` at `key`, or None when unset."""
    if value is None:
        return None
    fields = object_fields(key, value, {"limit", "window"}, {"technique"})
    technique = fields.get("technique", "fixed")
    if technique not in ("fixed", "sliding"):
        fail(f"{key}.technique", show(technique), "expected 'fixed' or 'sliding'")
    return Budget(
        limit=_dollars(f"{key}.limit", fields["limit"]),
        window=whole(f"{key}.window", fields["window"], MIN_BUDGET_WINDOW, MAX_BUDGET_WINDOW),
        technique=technique,
    )


def _dollars(key: str, value: object) -> float:
    """`value` (a number or its text) as a positive, finite amount of US dollars."""
    amount: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount = float(value)
    elif isinstance(value, str):
        try:
            amount = float(value)
        except ValueError:
            amount = None
    if amount is None or not math.isfinite(amount) or amount <= 0:
        fail(key, show(value), "expected an amount of US dollars greater than 0, such as 25 or 2.5")
    return amount


def _model_patterns(key: str, value: object) -> tuple[str, ...] | None:
    """A non-empty list of model names or `*` globs, or None when unset."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        fail(key, show(value), 'expected a non-empty list such as ["gpt-4o-mini", "claude-*"]')
    for position, pattern in enumerate(value):
        if (
            not isinstance(pattern, str)
            or len(pattern) > MAX_MODEL_PATTERN_LENGTH
            or not _MODEL_PATTERN.fullmatch(pattern)
        ):
            fail(
                f"{key}[{position}]",
                show(pattern),
                f"expected a model name or a glob where * matches anything: at most "
                f"{MAX_MODEL_PATTERN_LENGTH} printable characters, no spaces",
            )
    return tuple(cast(list[str], value))


def _endpoints(
    key: str, value: object, configured: tuple[str, ...]
) -> tuple[tuple[str, str], ...] | None:
    """A list of `"METHOD /path-glob"` entries as (method, glob) pairs, or None when unset.

    A glob whose first segment is `openai` is written as the `/v1/...` path clients use.
    """
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        fail(key, show(value), 'expected a non-empty list such as ["GET /v1/files/*"]')
    others = [slug for slug in configured if slug != "openai"]
    roots = ("v1", "openai", *others)
    entries: list[tuple[str, str]] = []
    for position, entry in enumerate(value):
        where = f"{key}[{position}]"
        match = _ENDPOINT.fullmatch(entry) if isinstance(entry, str) else None
        if (
            match is None
            or len(match.group(2)) > MAX_ENDPOINT_LENGTH
            or "?" in match.group(2)
            or "#" in match.group(2)
        ):
            fail(
                where,
                show(entry),
                f'expected "METHOD /path-glob": METHOD one of {", ".join(ENDPOINT_METHODS)}, '
                f"the path at most {MAX_ENDPOINT_LENGTH} printable characters without spaces, "
                '? or #, where * matches anything, e.g. "GET /v1/files/*"',
            )
        method, glob = match.group(1), match.group(2)
        root = glob[1:].partition("/")[0]
        if "*" not in root and root not in roots:
            fail(
                where,
                show(entry),
                "the path starts with /v1/ (or /openai/) for OpenAI, or /<provider>/ for "
                "another provider with keys"
                + (f": {', '.join(others)}" if others else " (there is none)"),
            )
        if root == "openai":
            glob = OPENAI_CLIENT_ROOT + glob[len("/openai") :]
        entries.append((method, glob))
    return tuple(entries)


def _provider_list(key: str, value: object, configured: tuple[str, ...]) -> tuple[str, ...] | None:
    """A non-empty list of provider slugs that have a key pool, or None when unset."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        fail(key, show(value), 'expected a non-empty list of provider slugs such as ["openai"]')
    for position, slug in enumerate(value):
        where = f"{key}[{position}]"
        if not isinstance(slug, str) or slug not in PROVIDERS:
            fail(where, show(slug), f"known providers are {', '.join(PROVIDERS)}")
        if slug not in configured:
            # The Worker only routes to providers with keys: allowing another would allow nothing.
            fail(
                where,
                f"{slug!r}, which has no keys in aigw:providerKeys",
                f"providers with keys are {', '.join(configured)}",
            )
    return tuple(cast(list[str], value))


def _expiry(key: str, value: object) -> datetime | None:
    """An ISO 8601 date (its start, 00:00 UTC) or date-time (UTC when it has no offset)."""
    if value is None:
        return None
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = (
                datetime.combine(date.fromisoformat(value), datetime.min.time())
                if _ISO_DATE.fullmatch(value)
                else datetime.fromisoformat(value)
            )
        except ValueError:
            moment = None
    if moment is None:
        fail(
            key,
            show(value),
            "expected an ISO 8601 date such as 2026-12-31 (its start, 00:00 UTC) or date-time "
            "such as 2026-12-31T18:00:00Z (UTC when no offset is given)",
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
