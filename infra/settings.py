"""Typed, validated aigw settings built from raw stack configuration (pure: no Pulumi calls)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, cast

from infra.client_policies import (
    ALL_CLIENTS,
    Budget,
    ClientPolicy,
    ClientRateLimit,
    rate_limit_binding,
    read_budget,
    read_clients,
)
from infra.secret_settings import (
    OtelExporter,
    check_secret_variables,
    read_client_tokens,
    read_gateway_token,
    read_otels,
    read_provider_keys,
)
from infra.setting_forms import (
    DEFAULT_CLIENT_GATEWAY_HEADERS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BODY_BYTES,
    KNOWN_KEYS,
    LOG_RETENTION_RANGE,
    MAX_ATTEMPTS,
    MAX_BODY_BYTES,
    MAX_CACHE_TTL,
    MAX_GATEWAY_RATE_INTERVAL,
    MAX_GATEWAY_RATE_LIMIT,
    MAX_SPEND_LIMIT_RULES,
    OPERATOR_GATEWAY_HEADERS,
    SCALAR_SETTINGS,
    SECRET_KEYS,
    RateTechnique,
    check_scalar_settings,
)

# `load`'s contract: `aigw:` keys without the namespace in, `SettingsError` on a bad value.
from infra.setting_values import NAMESPACE as NAMESPACE
from infra.setting_values import SettingsError as SettingsError
from infra.setting_values import boolean, fail, object_fields, show, whole

GATEWAY_HOST = "gateway.ai.cloudflare.com"

RetentionStrategy = Literal["STOP_INSERTING", "DELETE_OLDEST"]

_ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
_GATEWAY_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_WORKER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", re.IGNORECASE
)
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]{1,5})?", re.IGNORECASE)
_DATASET_CHARACTERS = re.compile(r"[^a-z0-9_]")
_GATEWAY_HEADER = re.compile(r"cf-aig-[a-z0-9]+(?:-[a-z0-9]+)*")

DEFAULT_CLIENT = "default"
"""The client whose token is generated when neither `clientTokens` nor `clients` names one."""


@dataclass(frozen=True)
class RateLimit:
    """The gateway's own rate limit: `limit` requests per `interval` seconds."""

    limit: int
    interval: int
    technique: RateTechnique


@dataclass(frozen=True)
class LogRetention:
    """How many gateway logs to keep, and what happens when they are full."""

    max_logs: int
    strategy: RetentionStrategy


@dataclass(frozen=True)
class CustomDomain:
    """A hostname in one of the account's zones, served by the Worker."""

    zone_id: str
    hostname: str


@dataclass(frozen=True)
class LogpushSettings:
    """AI Gateway Logpush: the gateway pushes its logs encrypted to this public key."""

    public_key: str


@dataclass(frozen=True)
class Settings:
    """Everything about a deployment that is not secret: safe to render into the Worker's source."""

    account_id: str
    gateway_id: str
    worker_name: str
    providers: tuple[str, ...]
    """Provider slugs that have a key pool, in configuration order."""
    cache_ttl: int = 0
    cache_invalidate_on_update: bool = True
    collect_logs: bool = True
    rate_limit: RateLimit | None = None
    log_retention: LogRetention | None = None
    workers_dev: bool = True
    custom_domain: CustomDomain | None = None
    cors_origins: tuple[str, ...] = ("*",)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    protect: bool = False
    """Protect the gateway from `pulumi destroy` (production stacks)."""
    clients: Mapping[str, ClientPolicy] = field(default_factory=lambda: MappingProxyType({}))
    """Client name (or `"*"`, every client without an entry) to policy; read-only."""
    budget: Budget | None = None
    """The gateway-wide spend cap, over every client."""
    client_gateway_headers: tuple[str, ...] = DEFAULT_CLIENT_GATEWAY_HEADERS
    """The `cf-aig-*` headers a client may send to the gateway (lower case); every other `cf-`
    header of a client is dropped."""
    analytics: bool = True
    """Whether the Worker writes its events to a Workers Analytics Engine dataset (`aigw usage`,
    `keys` and `clients` read them)."""
    logpush: LogpushSettings | None = None
    """The gateway's Logpush (AI Gateway encrypts each log to `public_key`); None: off."""

    @property
    def analytics_dataset(self) -> str:
        """The Analytics Engine dataset of this stack (see `analytics_dataset`)."""
        return analytics_dataset(self.worker_name)

    scalars: Mapping[str, int | bool | str] = field(
        default_factory=lambda: MappingProxyType(
            {key: setting.default for key, setting in SCALAR_SETTINGS.items()}
        )
    )
    """The value of each `SCALAR_SETTINGS` setting, by its name; read-only."""

    @property
    def gateway_url(self) -> str:
        """The AI Gateway's base URL; provider paths go below it."""
        return f"https://{GATEWAY_HOST}/v1/{self.account_id}/{self.gateway_id}"


@dataclass(frozen=True)
class Secrets:
    """The secret configuration values; kept apart from `Settings` so they cannot be rendered."""

    provider_keys: Mapping[str, tuple[str, ...]] = field(repr=False)
    client_tokens: Mapping[str, tuple[str, ...]] = field(
        repr=False, default_factory=lambda: MappingProxyType({})
    )
    """Client name to its tokens (more than one while it rotates); read-only. A client without
    one gets a generated token (see `generated_clients`)."""
    gateway_token: str | None = field(repr=False, default=None)
    """`None` when the program should create a scoped Cloudflare API token."""
    otels: tuple[OtelExporter, ...] = field(repr=False, default=())
    """The gateway's OpenTelemetry exporters: secret as a whole (headers and authorization are
    a collector's credentials)."""


def analytics_dataset(worker_name: str) -> str:
    """The Workers Analytics Engine dataset of a Worker: its name with `-` as `_`.

    A plain SQL identifier (lowercase letters, digits, `_`), so the reports name it in a query
    without quoting, and one per stack because Worker names are.
    """
    return _DATASET_CHARACTERS.sub("_", worker_name.lower())


def default_name(stack: str) -> str:
    """`aigw-<stack>`, folded into what both gateway ids and Worker names allow."""
    folded = re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-")
    return f"aigw-{folded}"[:63].rstrip("-") if folded else "aigw"


def load(raw: Mapping[str, object], stack: str) -> tuple[Settings, Secrets]:
    """Validate raw stack configuration (`aigw:` keys without the namespace).

    Values may be what Pulumi's config holds (strings, with objects as JSON text) or already
    decoded. Raises `SettingsError` on the first invalid value; nothing else is raised.
    """
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        fail(
            unknown[0],
            "a key aigw does not know",
            f"known settings are {', '.join(KNOWN_KEYS)}",
        )
    reader = _Reader(raw)
    account_id = reader.account_id()
    provider_keys = reader.provider_keys()
    settings = Settings(
        account_id=account_id,
        gateway_id=reader.name("gatewayId", _GATEWAY_ID, 64, default_name(stack)),
        worker_name=reader.name("workerName", _WORKER_NAME, 63, default_name(stack)),
        providers=tuple(provider_keys),
        cache_ttl=reader.integer("cacheTtl", 0, 0, MAX_CACHE_TTL),
        cache_invalidate_on_update=reader.boolean("cacheInvalidateOnUpdate", True),
        collect_logs=reader.boolean("collectLogs", True),
        rate_limit=reader.rate_limit(),
        log_retention=reader.log_retention(),
        workers_dev=reader.boolean("workersDev", True),
        custom_domain=reader.custom_domain(),
        cors_origins=reader.cors_origins(),
        max_attempts=reader.integer("maxAttempts", DEFAULT_MAX_ATTEMPTS, 1, MAX_ATTEMPTS),
        max_body_bytes=reader.integer("maxBodyBytes", DEFAULT_MAX_BODY_BYTES, 1, MAX_BODY_BYTES),
        protect=reader.boolean("protect", False),
        clients=reader.clients(tuple(provider_keys)),
        budget=reader.gateway_budget(),
        client_gateway_headers=reader.client_gateway_headers(),
        analytics=reader.boolean("analytics", True),
        logpush=reader.logpush(),
        scalars=reader.scalars(),
    )
    if not settings.workers_dev and settings.custom_domain is None:
        fail(
            "workersDev",
            "false with no customDomain",
            "keep workersDev true or set customDomain, or the Worker has no address",
        )
    check_scalar_settings(settings.scalars, settings.collect_logs)
    secrets = Secrets(
        provider_keys=provider_keys,
        client_tokens=reader.client_tokens(),
        gateway_token=reader.gateway_token(),
        otels=reader.otels(),
    )
    check_secret_variables(
        secrets.provider_keys, secrets.client_tokens, client_names(settings, secrets)
    )
    rules = spend_limit_rules(settings, client_names(settings, secrets))
    if len(rules) > MAX_SPEND_LIMIT_RULES:
        clients = len(rules) - (settings.budget is not None)
        gateway = " and the gateway budget" if settings.budget is not None else ""
        fail(
            "clients",
            f"{len(rules)} spend-limit rules ({clients} client budgets{gateway})",
            f"AI Gateway allows at most {MAX_SPEND_LIMIT_RULES} per gateway; a '*' budget "
            "counts once for every client without an entry of its own",
        )
    return settings, secrets


def policy_of(settings: Settings, client: str) -> ClientPolicy | None:
    """The client's own policy, else the `"*"` policy, else None; an own entry replaces `"*"`
    entirely (fields are not merged)."""
    own = settings.clients.get(client)
    return own if own is not None else settings.clients.get(ALL_CLIENTS)


def client_names(settings: Settings, secrets: Secrets) -> tuple[str, ...]:
    """Every client that can call the Worker: those with tokens, then those named in `clients`;
    `default` alone when neither names one."""
    named = [name for name in settings.clients if name != ALL_CLIENTS]
    return tuple(dict.fromkeys([*secrets.client_tokens, *named])) or (DEFAULT_CLIENT,)


def generated_clients(settings: Settings, secrets: Secrets) -> tuple[str, ...]:
    """Clients without a configured token, in `client_names` order: each gets a generated one."""
    return tuple(
        name for name in client_names(settings, secrets) if name not in secrets.client_tokens
    )


def spend_limit_rules(settings: Settings, clients: Iterable[str]) -> dict[str | None, Budget]:
    """One AI Gateway spend-limit rule per budget: client name (None for the gateway) to budget.

    A `"*"` budget gives each client without an entry of its own a budget of that size (a rule
    per client, so one client spending it does not stop the others).
    """
    rules: dict[str | None, Budget] = {}
    for client in clients:
        policy = policy_of(settings, client)
        if policy is not None and policy.budget is not None:
            rules[client] = policy.budget
    if settings.budget is not None:
        rules[None] = settings.budget
    return rules


def rate_limit_bindings(settings: Settings) -> dict[str, ClientRateLimit]:
    """One Rate Limiting binding per distinct {limit, period} among the policies, `"*"` included,
    sorted by period then limit; each is keyed by client name when called."""
    rates = {
        policy.rate_limit for policy in settings.clients.values() if policy.rate_limit is not None
    }
    ordered = sorted(rates, key=lambda rate: (rate.period, rate.limit))
    return {rate_limit_binding(rate): rate for rate in ordered}


class _Reader:
    """Reads one key at a time from raw config, decoding JSON text where an object is expected."""

    def __init__(self, raw: Mapping[str, object]) -> None:
        self._raw = raw

    def _structured(self, key: str, kind: str) -> object:
        """The value of `key`, decoded when it is JSON text; `kind` says what is expected."""
        value = self._raw.get(key)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                given = "a value that is not JSON" if key in SECRET_KEYS else show(value)
                fail(key, given, f"expected {kind}")
        return value

    def scalars(self) -> Mapping[str, int | bool | str]:
        """Every `SCALAR_SETTINGS` value, each checked by its declaration."""
        values = {
            key: setting.read(key, self._raw.get(key)) for key, setting in SCALAR_SETTINGS.items()
        }
        return MappingProxyType(values)

    def account_id(self) -> str:
        value = self._raw.get("accountId")
        if value is None or value == "":
            fail(
                "accountId",
                "nothing",
                "it is required: pulumi config set aigw:accountId <32-hex account id>",
            )
        if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
            fail("accountId", show(value), "expected 32 lowercase hex digits")
        return value

    def name(self, key: str, pattern: re.Pattern[str], limit: int, default: str) -> str:
        value = self._raw.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not pattern.fullmatch(value):
            fail(
                key,
                show(value),
                f"expected lowercase letters, digits and '-', at most {limit} characters, "
                "starting and ending with a letter or digit",
            )
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._raw.get(key)
        if value is None:
            return default
        return whole(key, value, low, high)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw.get(key)
        return default if value is None else boolean(key, value)

    def rate_limit(self) -> RateLimit | None:
        value = self._structured("rateLimit", '{"limit", "interval", "technique"}')
        if value is None:
            return None
        fields = object_fields("rateLimit", value, {"limit", "interval"}, {"technique"})
        technique = fields.get("technique", "fixed")
        if technique not in ("fixed", "sliding"):
            fail("rateLimit.technique", show(technique), "expected 'fixed' or 'sliding'")
        return RateLimit(
            limit=whole("rateLimit.limit", fields["limit"], 1, MAX_GATEWAY_RATE_LIMIT),
            interval=whole("rateLimit.interval", fields["interval"], 1, MAX_GATEWAY_RATE_INTERVAL),
            technique=technique,
        )

    def log_retention(self) -> LogRetention | None:
        value = self._structured("logRetention", '{"maxLogs", "strategy"}')
        if value is None:
            return None
        fields = object_fields("logRetention", value, {"maxLogs"}, {"strategy"})
        strategy = fields.get("strategy", "STOP_INSERTING")
        if strategy not in ("STOP_INSERTING", "DELETE_OLDEST"):
            fail(
                "logRetention.strategy",
                show(strategy),
                "expected 'STOP_INSERTING' or 'DELETE_OLDEST'",
            )
        return LogRetention(
            max_logs=whole("logRetention.maxLogs", fields["maxLogs"], *LOG_RETENTION_RANGE),
            strategy=strategy,
        )

    def custom_domain(self) -> CustomDomain | None:
        value = self._structured("customDomain", '{"zoneId", "hostname"}')
        if value is None:
            return None
        fields = object_fields("customDomain", value, {"zoneId", "hostname"}, set())
        zone_id, hostname = fields["zoneId"], fields["hostname"]
        if not isinstance(zone_id, str) or not _ACCOUNT_ID.fullmatch(zone_id):
            fail("customDomain.zoneId", show(zone_id), "expected 32 lowercase hex digits")
        if not isinstance(hostname, str) or not _HOSTNAME.fullmatch(hostname):
            fail(
                "customDomain.hostname",
                show(hostname),
                "expected a DNS hostname such as ai.example.com",
            )
        return CustomDomain(zone_id=zone_id, hostname=hostname.lower())

    def cors_origins(self) -> tuple[str, ...]:
        value = self._structured("corsOrigins", "a list of origins")
        if value is None:
            return ("*",)
        if not isinstance(value, list) or not value:
            fail(
                "corsOrigins",
                show(value),
                'expected a non-empty list such as ["*"] or ["https://chat.example.com"]',
            )
        for origin in value:
            if origin != "*" and not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
                fail(
                    "corsOrigins",
                    show(origin),
                    'expected "*" or an origin: scheme://host[:port], no path or trailing /',
                )
        return tuple(cast(list[str], value))

    def client_gateway_headers(self) -> tuple[str, ...]:
        key = "clientGatewayHeaders"
        value = self._structured(key, "a list of cf-aig-* header names")
        if value is None:
            return DEFAULT_CLIENT_GATEWAY_HEADERS
        if not isinstance(value, list):
            fail(
                key,
                show(value),
                'expected a list of cf-aig-* header names such as ["cf-aig-skip-cache"], or []',
            )
        names: list[str] = []
        for position, name in enumerate(value):
            where = f"{key}[{position}]"
            lowered = name.strip().lower() if isinstance(name, str) else None
            if lowered is None or not _GATEWAY_HEADER.fullmatch(lowered):
                fail(where, show(name), "expected an AI Gateway header name: cf-aig-<name>")
            if lowered in OPERATOR_GATEWAY_HEADERS:
                fail(
                    where,
                    f"{name!r}, a {OPERATOR_GATEWAY_HEADERS[lowered]} control",
                    "cost, logging, retries, routing, BYOK, authorization and metadata "
                    "controls are the operator's: no client may send them",
                )
            if lowered not in names:
                names.append(lowered)
        return tuple(names)

    def provider_keys(self) -> dict[str, tuple[str, ...]]:
        return read_provider_keys(self._structured("providerKeys", '{"<provider>": ["<key>", …]}'))

    def client_tokens(self) -> Mapping[str, tuple[str, ...]]:
        return read_client_tokens(
            self._structured("clientTokens", '{"<client name>": "<token>" or ["<token>", …]}')
        )

    def clients(self, providers: tuple[str, ...]) -> Mapping[str, ClientPolicy]:
        value = self._structured("clients", '{"<client name>": {<policy>}, "*": {<policy>}}')
        return read_clients(value, providers)

    def gateway_budget(self) -> Budget | None:
        return read_budget("budget", self._structured("budget", '{"limit", "window", "technique"}'))

    def gateway_token(self) -> str | None:
        return read_gateway_token(self._raw.get("gatewayToken"))

    def logpush(self) -> LogpushSettings | None:
        value = self._structured("logpush", '{"publicKey"}')
        if value is None:
            return None
        key = object_fields("logpush", value, {"publicKey"}, set())["publicKey"]
        if not isinstance(key, str) or "PUBLIC KEY-----" not in key:
            fail(
                "logpush.publicKey",
                show(key),
                "expected a PEM public key (-----BEGIN PUBLIC KEY----- ...)",
            )
        return LogpushSettings(public_key=key.strip())

    def otels(self) -> tuple[OtelExporter, ...]:
        # A secret: values are described by kind only, never shown.
        value = self._structured("otels", "a list of {url, headers, authorization, contentType}")
        return read_otels(value)
