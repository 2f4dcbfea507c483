"""Typed, validated aigw settings built from raw stack configuration (pure: no Pulumi calls)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NoReturn, cast

from infra.providers import BINDING_SEPARATORS, PROVIDERS

NAMESPACE = "aigw"
GATEWAY_HOST = "gateway.ai.cloudflare.com"

RateTechnique = Literal["fixed", "sliding"]
RetentionStrategy = Literal["STOP_INSERTING", "DELETE_OLDEST"]

_ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")
_GATEWAY_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_WORKER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", re.IGNORECASE
)
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]{1,5})?", re.IGNORECASE)
_CLIENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

MIN_CLIENT_TOKEN_LENGTH = 16
MAX_CACHE_TTL = 30 * 24 * 3600
DEFAULT_MAX_ATTEMPTS = 3
MAX_ATTEMPTS = 10
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_BODY_BYTES = 100 * 1024 * 1024  # the Workers request-body limit on the Free and Pro plans
LOG_RETENTION_RANGE = (10_000, 10_000_000)  # what the AI Gateway API accepts for log_management

KNOWN_KEYS = (
    "accountId",
    "gatewayId",
    "cacheTtl",
    "cacheInvalidateOnUpdate",
    "collectLogs",
    "rateLimit",
    "logRetention",
    "workerName",
    "workersDev",
    "customDomain",
    "corsOrigins",
    "maxAttempts",
    "maxBodyBytes",
    "protect",
    "providerKeys",
    "clientTokens",
    "gatewayToken",
)
SECRET_KEYS = frozenset({"providerKeys", "clientTokens", "gatewayToken"})


class SettingsError(ValueError):
    """An invalid configuration value; the message names the key, the value and what is allowed."""


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

    @property
    def gateway_url(self) -> str:
        """The AI Gateway's base URL; provider paths go below it."""
        return f"https://{GATEWAY_HOST}/v1/{self.account_id}/{self.gateway_id}"


@dataclass(frozen=True)
class Secrets:
    """The secret configuration values; kept apart from `Settings` so they cannot be rendered."""

    provider_keys: Mapping[str, tuple[str, ...]] = field(repr=False)
    client_tokens: Mapping[str, str] | None = field(repr=False, default=None)
    """`None` when the program should generate one token."""
    gateway_token: str | None = field(repr=False, default=None)
    """`None` when the program should create a scoped Cloudflare API token."""


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
        _fail(
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
    )
    if not settings.workers_dev and settings.custom_domain is None:
        _fail(
            "workersDev",
            "false with no customDomain",
            "keep workersDev true or set customDomain, or the Worker has no address",
        )
    secrets = Secrets(
        provider_keys=provider_keys,
        client_tokens=reader.client_tokens(),
        gateway_token=reader.gateway_token(),
    )
    return settings, secrets


def _fail(key: str, given: str, allowed: str) -> NoReturn:
    """Raise the one message shape: the key, what was given, what is allowed."""
    raise SettingsError(f"{NAMESPACE}:{key}: got {given}; {allowed}")


def _show(value: object) -> str:
    """A non-secret value as an error message shows it: text quoted, anything else as JSON."""
    return json.dumps(value) if not isinstance(value, str) else repr(value)


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
                given = "a value that is not JSON" if key in SECRET_KEYS else _show(value)
                _fail(key, given, f"expected {kind}")
        return value

    def account_id(self) -> str:
        value = self._raw.get("accountId")
        if value is None or value == "":
            _fail(
                "accountId",
                "nothing",
                "it is required: pulumi config set aigw:accountId <32-hex account id>",
            )
        if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
            _fail("accountId", _show(value), "expected 32 lowercase hex digits")
        return value

    def name(self, key: str, pattern: re.Pattern[str], limit: int, default: str) -> str:
        value = self._raw.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not pattern.fullmatch(value):
            _fail(
                key,
                _show(value),
                f"expected lowercase letters, digits and '-', at most {limit} characters, "
                "starting and ending with a letter or digit",
            )
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._raw.get(key)
        if value is None:
            return default
        return _whole(key, value, low, high)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        _fail(key, _show(value), "expected true or false")

    def rate_limit(self) -> RateLimit | None:
        value = self._structured("rateLimit", '{"limit", "interval", "technique"}')
        if value is None:
            return None
        fields = _object("rateLimit", value, {"limit", "interval"}, {"technique"})
        technique = fields.get("technique", "fixed")
        if technique not in ("fixed", "sliding"):
            _fail("rateLimit.technique", _show(technique), "expected 'fixed' or 'sliding'")
        return RateLimit(
            limit=_whole("rateLimit.limit", fields["limit"], 1, 1_000_000),
            interval=_whole("rateLimit.interval", fields["interval"], 1, 86_400),
            technique=technique,
        )

    def log_retention(self) -> LogRetention | None:
        value = self._structured("logRetention", '{"maxLogs", "strategy"}')
        if value is None:
            return None
        fields = _object("logRetention", value, {"maxLogs"}, {"strategy"})
        strategy = fields.get("strategy", "STOP_INSERTING")
        if strategy not in ("STOP_INSERTING", "DELETE_OLDEST"):
            _fail(
                "logRetention.strategy",
                _show(strategy),
                "expected 'STOP_INSERTING' or 'DELETE_OLDEST'",
            )
        return LogRetention(
            max_logs=_whole("logRetention.maxLogs", fields["maxLogs"], *LOG_RETENTION_RANGE),
            strategy=strategy,
        )

    def custom_domain(self) -> CustomDomain | None:
        value = self._structured("customDomain", '{"zoneId", "hostname"}')
        if value is None:
            return None
        fields = _object("customDomain", value, {"zoneId", "hostname"}, set())
        zone_id, hostname = fields["zoneId"], fields["hostname"]
        if not isinstance(zone_id, str) or not _ACCOUNT_ID.fullmatch(zone_id):
            _fail("customDomain.zoneId", _show(zone_id), "expected 32 lowercase hex digits")
        if not isinstance(hostname, str) or not _HOSTNAME.fullmatch(hostname):
            _fail(
                "customDomain.hostname",
                _show(hostname),
                "expected a DNS hostname such as ai.example.com",
            )
        return CustomDomain(zone_id=zone_id, hostname=hostname.lower())

    def cors_origins(self) -> tuple[str, ...]:
        value = self._structured("corsOrigins", "a list of origins")
        if value is None:
            return ("*",)
        if not isinstance(value, list) or not value:
            _fail(
                "corsOrigins",
                _show(value),
                'expected a non-empty list such as ["*"] or ["https://chat.example.com"]',
            )
        for origin in value:
            if origin != "*" and not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
                _fail(
                    "corsOrigins",
                    _show(origin),
                    'expected "*" or an origin: scheme://host[:port], no path or trailing /',
                )
        return tuple(cast(list[str], value))

    def provider_keys(self) -> dict[str, tuple[str, ...]]:
        value = self._structured("providerKeys", '{"<provider>": ["<key>", …]}')
        if value is None:
            _fail(
                "providerKeys",
                "nothing",
                'it is required: pulumi config set --secret --path "aigw:providerKeys.openai[0]" '
                "<key>",
            )
        if not isinstance(value, dict) or not value:
            _fail(
                "providerKeys",
                _kind(value),
                'expected an object of key lists, such as {"openai": ["<key>", …]}',
            )
        pools: dict[str, tuple[str, ...]] = {}
        for slug, keys in value.items():
            if slug not in PROVIDERS:
                _fail(
                    "providerKeys",
                    f"provider {slug!r}",
                    f"known providers are {', '.join(PROVIDERS)}",
                )
            if isinstance(keys, str):
                keys = [keys]
            if not isinstance(keys, list) or not keys:
                _fail(
                    f"providerKeys.{slug}",
                    "an empty or non-list value",
                    "expected a list of one or more keys",
                )
            seen: dict[str, int] = {}
            for position, key in enumerate(keys):
                where = f"providerKeys.{slug}[{position}]"
                if not isinstance(key, str) or not key:
                    _fail(where, "an empty or non-string key", "expected the key as a string")
                if BINDING_SEPARATORS.search(key):
                    _fail(
                        where, "a key containing white space or a comma", "keys are single tokens"
                    )
                if key in seen:
                    _fail(
                        where,
                        f"the same key as providerKeys.{slug}[{seen[key]}]",
                        "each key must appear once, or rotation would favour it",
                    )
                seen[key] = position
            pools[slug] = tuple(keys)
        return pools

    def client_tokens(self) -> dict[str, str] | None:
        value = self._structured("clientTokens", '{"<client name>": "<token>"}')
        if value is None:
            return None
        if not isinstance(value, dict) or not value:
            _fail(
                "clientTokens",
                _kind(value),
                'expected an object such as {"laptop": "<token>"}, '
                "or leave it unset to generate one",
            )
        seen: dict[str, str] = {}
        for name, token in value.items():
            if not _CLIENT_NAME.fullmatch(name):
                _fail(
                    "clientTokens",
                    f"client name {name!r}",
                    "names are 1-64 letters, digits, '.', '_' or '-'",
                )
            if not isinstance(token, str):
                _fail(
                    f"clientTokens.{name}",
                    f"{_kind(token)} instead of text",
                    "set the token as a string (pulumi config set --type string …)",
                )
            if len(token) < MIN_CLIENT_TOKEN_LENGTH:
                _fail(
                    f"clientTokens.{name}",
                    f"a token shorter than {MIN_CLIENT_TOKEN_LENGTH} characters",
                    f"use at least {MIN_CLIENT_TOKEN_LENGTH} random characters",
                )
            if BINDING_SEPARATORS.search(token):
                _fail(
                    f"clientTokens.{name}",
                    "a token containing white space or a comma",
                    "tokens are single words",
                )
            if token in seen:
                _fail(
                    f"clientTokens.{name}",
                    f"the same token as clientTokens.{seen[token]}",
                    "each client needs its own token",
                )
            seen[token] = name
        return dict(cast(dict[str, str], value))

    def gateway_token(self) -> str | None:
        value = self._raw.get("gatewayToken")
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or BINDING_SEPARATORS.search(value):
            _fail(
                "gatewayToken",
                "an empty value or one with white space",
                "expected a Cloudflare API token with AI Gateway Run, "
                "or leave it unset to create one",
            )
        return value


def _kind(value: object) -> str:
    """What kind of value a secret key held, without showing it."""
    if value == {}:
        return "an empty object"
    kind = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return kind.get(type(value), f"a {type(value).__name__}")


def _whole(key: str, value: object, low: int, high: int) -> int:
    """`value` (a number or its text) as a whole number from `low` to `high`."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        number = int(value)
    if number is None or not low <= number <= high:
        _fail(key, _show(value), f"expected a whole number from {low} to {high}")
    return number


def _object(key: str, value: object, required: set[str], optional: set[str]) -> dict[str, object]:
    """`value` as an object with every `required` field and none outside `optional`."""
    if not isinstance(value, dict):
        _fail(
            key, _show(value), f"expected an object with {', '.join(sorted(required | optional))}"
        )
    missing = sorted(required - set(value))
    extra = sorted(set(value) - required - optional)
    if missing or extra:
        problem = f"missing {missing[0]!r}" if missing else f"unknown field {extra[0]!r}"
        _fail(
            key,
            f"{_show(value)} ({problem})",
            f"fields are {', '.join(sorted(required | optional))}",
        )
    return cast(dict[str, object], value)
