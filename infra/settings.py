"""Typed, validated aigw settings built from raw stack configuration (pure: no Pulumi calls)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Literal, NoReturn, cast

from infra.providers import BINDING_SEPARATORS, PROVIDERS, secret_values
from infra.secret_bindings import WORKER_VARIABLE_LIMITS, entry_bytes

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
GENERATED_TOKEN_LENGTH = 48
"""A generated client token: 48 letters and digits, about 285 random bits, beyond any guessing."""
MAX_CACHE_TTL = 30 * 24 * 3600
DEFAULT_MAX_ATTEMPTS = 3
MAX_ATTEMPTS = 10
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_BODY_BYTES = 100 * 1024 * 1024  # the Workers request-body limit on the Free and Pro plans
LOG_RETENTION_RANGE = (10_000, 10_000_000)  # what the AI Gateway API accepts for log_management
ALL_CLIENTS = "*"
"""The `clients` entry that is the policy of every client without an entry of its own."""
DEFAULT_CLIENT = "default"
"""The client whose token is generated when neither `clientTokens` nor `clients` names one."""
RATE_LIMIT_PERIODS = (10, 60)  # the only periods a Workers Rate Limiting binding accepts
MAX_CLIENT_RATE_LIMIT = 1_000_000
MIN_BUDGET_WINDOW = 60
MAX_BUDGET_WINDOW = 366 * 24 * 3600
MAX_SPEND_LIMIT_RULES = 20  # AI Gateway allows at most 20 spend-limit rules per gateway
MAX_OTEL_EXPORTERS = 10  # a bound of aigw's own: one or two collectors is the common case
OTEL_CONTENT_TYPES = ("json", "protobuf")  # pulumi-cloudflare 6.23 AiGatewayOtelArgs.content_type
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")  # an HTTP token (RFC 9110)
_DATASET_CHARACTERS = re.compile(r"[^a-z0-9_]")
MAX_MODEL_PATTERN_LENGTH = 256
_MODEL_PATTERN = re.compile(r"[!-~]+")  # printable ASCII without spaces; `*` is the only wildcard
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_GATEWAY_HEADER = re.compile(r"cf-aig-[a-z0-9]+(?:-[a-z0-9]+)*")
_ENDPOINT = re.compile(r"(GET|POST|DELETE|\*) (/[!-~]*)")
MAX_ENDPOINT_LENGTH = 256
ENDPOINT_METHODS = ("GET", "POST", "DELETE", "*")
"""The methods an `endpoints` entry may name: those the Worker proxies, or `*` for all three."""
OPENAI_CLIENT_ROOT = "/v1"
"""How a client's path to OpenAI starts (`/v1/...`); `/openai/...` reaches the same endpoints."""
DEFAULT_CLIENT_GATEWAY_HEADERS = ("cf-aig-skip-cache", "cf-aig-cache-ttl", "cf-aig-cache-key")
"""The AI Gateway controls a client may send unless `clientGatewayHeaders` says otherwise: the
cache controls (the Worker caps the TTL at the gateway's and scopes the key to the client)."""
OPERATOR_GATEWAY_HEADERS = {
    "cf-aig-authorization": "authorization",
    "cf-aig-metadata": "metadata",
    "cf-aig-custom-cost": "cost",
    "cf-aig-collect-log": "logging",
    "cf-aig-collect-log-payload": "logging",
    "cf-aig-zdr": "logging",
    "cf-aig-max-attempts": "retries",
    "cf-aig-retry-delay": "retries",
    "cf-aig-backoff": "retries",
    "cf-aig-request-timeout": "routing",
    "cf-aig-byok-alias": "BYOK",
}
"""AI Gateway controls that are the operator's alone (DESIGN §4), with what each governs: no
`clientGatewayHeaders` may list them. With a client's cost or logging control a client could
spend past its budget or hide from `aigw usage`; authorization and metadata are the Worker's."""


@dataclass(frozen=True)
class ScalarSetting:
    """A setting that is one number, switch or word, declared once: its validation, its entry in
    Pulumi.yaml (written by `python -m infra.cli.reference`), its reference entry and the
    `AiGateway` input it sets all come from this declaration."""

    default: int | bool | str
    """Also what the setting's type is: an integer, a boolean or one word of `choices`."""
    description: str
    """Pulumi.yaml's description and the reference's text."""
    gateway_input: str = ""
    """The pulumi-cloudflare `AiGateway` input it sets, if any (see infra/gateway_inputs.py)."""
    bounds: tuple[int, int] = (0, 0)
    """An integer's smallest and largest value."""
    choices: tuple[str, ...] = ()
    """A word's allowed values."""
    unit: str = ""
    """What an integer counts, e.g. `milliseconds`."""

    @property
    def kind(self) -> Literal["boolean", "integer", "string"]:
        """Pulumi.yaml's type of the setting."""
        if isinstance(self.default, bool):
            return "boolean"
        return "integer" if isinstance(self.default, int) else "string"

    @property
    def form(self) -> SettingForm:
        """How the settings reference shows its type and allowed values."""
        if self.kind == "boolean":
            return SettingForm("boolean", "`true` or `false`")
        if self.kind == "integer":
            unit = f" ({self.unit})" if self.unit else ""
            return SettingForm(f"integer{unit}", f"{self.bounds[0]} to {self.bounds[1]}")
        *others, last = (f"`{choice}`" for choice in self.choices)
        return SettingForm("string", f"{', '.join(others)} or {last}")

    def declaration(self) -> dict[str, object]:
        """Its entry in Pulumi.yaml's `config` block (without the key)."""
        return {"type": self.kind, "description": self.description, "default": self.default}

    def read(self, key: str, value: object) -> int | bool | str:
        """`value` (as Pulumi passes it, or decoded) checked against the declaration; the
        default when unset."""
        if value is None:
            return self.default
        if self.kind == "integer":
            return _whole(key, value, *self.bounds)
        if self.kind == "boolean":
            return _boolean(key, value)
        if not isinstance(value, str) or value not in self.choices:
            _fail(key, _show(value), f"expected one of {', '.join(map(repr, self.choices))}")
        return value


GATEWAY_RETRY_DELAY_MS = (0, 5000)
"""What AI Gateway documents for a retry's delay: "in milliseconds, maximum of 5 seconds"
(developers.cloudflare.com/ai-gateway/configuration/request-handling/#request-retries; the
provider's own check allows up to 60000, terraform-provider-cloudflare
internal/services/ai_gateway/schema.go)."""

SCALAR_SETTINGS: Mapping[str, ScalarSetting] = MappingProxyType(
    {
        # Retries inside the gateway (AiGateway retry_*): Cloudflare documents that the gateway
        # retries "when an upstream provider returns an error" (changelog 2026-04-02, "Automatically
        # retry on upstream provider failures"; ai-gateway/configuration/manage-gateway/
        # #retry-requests), without saying which statuses, so a 429 or 401 counts. Such a retry
        # carries the same request, so the same provider key: off by default, the Worker's
        # failover retries with another key instead.
        "gatewayMaxAttempts": ScalarSetting(
            default=1,
            bounds=(1, 5),
            gateway_input="retry_max_attempts",
            description=(
                "Attempts AI Gateway itself makes for each request the Worker sends, 1 to 5; "
                "1 (the default) turns the gateway's own retries off. A gateway retry resends "
                "the same request with the same provider key; Cloudflare documents that the "
                "gateway retries when the provider answers with an error, without saying which, "
                "so a rate-limited key's 429 may be retried on that same key. The Worker's "
                "failover (aigw:maxAttempts) retries with another key once the gateway has "
                "answered, so with both a request can reach the provider up to maxAttempts x "
                "gatewayMaxAttempts times. Raise it only for a provider with a single key."
            ),
        ),
        "gatewayRetryDelay": ScalarSetting(
            default=0,
            bounds=GATEWAY_RETRY_DELAY_MS,
            unit="milliseconds",
            gateway_input="retry_delay",
            description=(
                "How long AI Gateway waits before a retry of its own, in milliseconds, 0 to "
                "5000 (Cloudflare's documented maximum). Only with gatewayMaxAttempts above 1."
            ),
        ),
        "gatewayRetryBackoff": ScalarSetting(
            default="constant",
            choices=("constant", "linear", "exponential"),
            gateway_input="retry_backoff",
            description=(
                "How AI Gateway's delay grows from one retry to the next: constant, linear or "
                "exponential. Only with gatewayMaxAttempts above 1."
            ),
        ),
        # developers.cloudflare.com/ai-gateway/observability/log-classification/ (beta).
        "logClassification": ScalarSetting(
            default=False,
            gateway_input="log_classification",
            description=(
                "Let Cloudflare classify the gateway's stored logs by task and by how well the "
                "model fits it (User Insights, beta); Cloudflare then processes the stored "
                "prompts and responses. Needs aigw:collectLogs."
            ),
        ),
        # The Worker's own cache key (infra/worker/headers.py cache_key); the gateway's cache is
        # keyed by it alone, so a key without the client's name is one entry for every client.
        "cacheScope": ScalarSetting(
            default="client",
            choices=("client", "shared"),
            description=(
                "Whose requests share a gateway cache entry (with aigw:cacheTtl above 0): client "
                "(the default), each client only its own, or shared, one entry per request for "
                "every client. Shared lets a client learn whether another client sent exactly the "
                "same request (a cache hit) and receive that client's answer."
            ),
        ),
        # terraform-provider-cloudflare internal/services/ai_gateway/schema.go: "postpaid" bills
        # the account through Workers AI, "unified" deducts AI Gateway credits; the provider's
        # default is "postpaid".
        "workersAiBillingMode": ScalarSetting(
            default="postpaid",
            choices=("postpaid", "unified"),
            gateway_input="workers_ai_billing_mode",
            description=(
                "How Workers AI requests through the gateway are billed: postpaid (the "
                "account's Workers AI usage, the default) or unified (deducted from AI Gateway's "
                "Unified Billing credits)."
            ),
        ),
        # The AiGateway input's own text: "Requires customer-provided provider credentials and
        # prevents fallback to Unified Billing" (pulumi-cloudflare 6.23 ai_gateway.py).
        "byokOnly": ScalarSetting(
            default=False,
            gateway_input="byok_only",
            description=(
                "Require the caller's own provider credentials on every request and never fall "
                "back to Unified Billing (the account's AI Gateway credits). The Worker sends a "
                "pool key with every request; true makes sure that no request is ever paid from "
                "credits."
            ),
        ),
    }
)
"""Settings declared once each (`ScalarSetting`), read by `_Reader.scalars`."""


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
    "clients",
    "budget",
    "gatewayToken",
    "clientGatewayHeaders",
    "analytics",
    "otels",
    "logpush",
    *SCALAR_SETTINGS,
)
SECRET_KEYS = frozenset({"providerKeys", "clientTokens", "gatewayToken", "otels"})
MAX_GATEWAY_RATE_LIMIT = 1_000_000
MAX_GATEWAY_RATE_INTERVAL = 86_400
_TECHNIQUES = "`fixed` (default) or `sliding`"
_NAME_RULE = "lowercase letters, digits and `-`, starting and ending with a letter or digit"
_CLIENT_NAME_RULE = "names of 1-64 letters, digits, `.`, `_` or `-`"


@dataclass(frozen=True)
class SettingForm:
    """How a setting is written and what it accepts, as the settings reference shows it.

    The reference (docs/reference/settings.md) is generated from these, the constants the
    validation below uses, and Pulumi.yaml's descriptions and defaults.
    """

    type: str
    allowed: str


SETTING_FORMS: Mapping[str, SettingForm] = MappingProxyType(
    {
        "accountId": SettingForm("string", "32 lowercase hex digits"),
        "providerKeys": SettingForm(
            "object `{provider: [keys]}`",
            f"providers {', '.join(f'`{slug}`' for slug in PROVIDERS)}; each a list of one or "
            "more keys without white space or commas, each key once and at most "
            f"{WORKER_VARIABLE_LIMITS.value_bytes} bytes",
        ),
        "clientTokens": SettingForm(
            "object `{name: token or [tokens]}`",
            f"{_CLIENT_NAME_RULE}; tokens of at least {MIN_CLIENT_TOKEN_LENGTH} characters "
            "without white space or commas, each used once, `name:token` at most "
            f"{WORKER_VARIABLE_LIMITS.value_bytes} bytes",
        ),
        "clients": SettingForm(
            "object `{name: policy}`",
            f'{_CLIENT_NAME_RULE}, or `"*"`; each policy has the fields of the '
            f"[client policy](#client-policy-fields); at most {MAX_SPEND_LIMIT_RULES} "
            "budgets in all, with `budget`",
        ),
        "budget": SettingForm(
            "object `{limit, window, technique}`",
            f"`limit` US dollars > 0; `window` {MIN_BUDGET_WINDOW} to {MAX_BUDGET_WINDOW} "
            f"seconds; `technique` {_TECHNIQUES}",
        ),
        "gatewayToken": SettingForm(
            "string",
            "a Cloudflare API token with AI Gateway Run, without white space, at most "
            f"{WORKER_VARIABLE_LIMITS.value_bytes} bytes",
        ),
        "gatewayId": SettingForm("string", f"{_NAME_RULE}; at most 64 characters"),
        "cacheTtl": SettingForm("integer (seconds)", f"0 (off) to {MAX_CACHE_TTL}"),
        "cacheInvalidateOnUpdate": SettingForm("boolean", "`true` or `false`"),
        "collectLogs": SettingForm("boolean", "`true` or `false`"),
        "rateLimit": SettingForm(
            "object `{limit, interval, technique}`",
            f"`limit` 1 to {MAX_GATEWAY_RATE_LIMIT} requests; `interval` 1 to "
            f"{MAX_GATEWAY_RATE_INTERVAL} seconds; `technique` {_TECHNIQUES}",
        ),
        "logRetention": SettingForm(
            "object `{maxLogs, strategy}`",
            f"`maxLogs` {LOG_RETENTION_RANGE[0]} to {LOG_RETENTION_RANGE[1]}; `strategy` "
            "`STOP_INSERTING` (default) or `DELETE_OLDEST`",
        ),
        "workerName": SettingForm("string", f"{_NAME_RULE}; at most 63 characters"),
        "workersDev": SettingForm("boolean", "`true` or `false` (`false` needs `customDomain`)"),
        "customDomain": SettingForm(
            "object `{zoneId, hostname}`",
            "`zoneId` 32 lowercase hex digits; `hostname` a DNS name such as `ai.example.com`",
        ),
        "corsOrigins": SettingForm(
            "list of strings",
            'one or more of `"*"` or `scheme://host[:port]`, with no path or trailing `/`',
        ),
        "maxAttempts": SettingForm("integer", f"1 to {MAX_ATTEMPTS}"),
        "maxBodyBytes": SettingForm("integer (bytes)", f"1 to {MAX_BODY_BYTES}"),
        "protect": SettingForm("boolean", "`true` or `false`"),
        "clientGatewayHeaders": SettingForm(
            "list of strings",
            "`cf-aig-<name>` header names, none of the operator's controls ("
            + ", ".join(f"`{name}`" for name in OPERATOR_GATEWAY_HEADERS)
            + "); `[]` for none",
        ),
        "analytics": SettingForm("boolean", "`true` or `false`"),
        "otels": SettingForm(
            "list of objects `{url, headers, authorization, contentType}`",
            f"at most {MAX_OTEL_EXPORTERS}; `url` an `https://` URL; `headers` an object of header "
            "names to text; `authorization` text (sent as the `Authorization` header); "
            "`contentType` `json` (default) or `protobuf`; a secret as a whole",
        ),
        "logpush": SettingForm(
            "object `{publicKey}`",
            "`publicKey` the PEM public key Logpush encrypts the logs to",
        ),
        **{key: setting.form for key, setting in SCALAR_SETTINGS.items()},
    }
)
"""Every setting of `KNOWN_KEYS`: its type and allowed values, for the settings reference."""


@dataclass(frozen=True)
class PolicyField:
    """One field of a client policy (`aigw:clients.<name>.<field>`), as the reference shows it."""

    type: str
    allowed: str
    description: str


CLIENT_POLICY_FIELDS: Mapping[str, PolicyField] = MappingProxyType(
    {
        "models": PolicyField(
            "list of strings",
            f"one or more model names or globs where `*` matches any run of characters; at "
            f"most {MAX_MODEL_PATTERN_LENGTH} printable characters each, no spaces",
            "The only models the client may call. Every model a request names is checked (the "
            "path's, the body's `model` and every other key naming one), a request whose models "
            "cannot all be read is refused, and the client may call only the inference endpoints "
            "where aigw reads every model a request names, the model listings, and `endpoints`. "
            "Enforced by the Worker.",
        ),
        "providers": PolicyField(
            "list of strings",
            "one or more provider slugs that have keys in `providerKeys`",
            "The only providers the client may call. Enforced by the Worker.",
        ),
        "rateLimit": PolicyField(
            "object `{limit, period}`",
            f"`limit` 1 to {MAX_CLIENT_RATE_LIMIT} requests; `period` "
            f"{' or '.join(str(period) for period in RATE_LIMIT_PERIODS)} seconds",
            "Requests per period, counted per client; refused requests do not count. Enforced "
            "by the Worker through a Workers Rate Limiting binding.",
        ),
        "budget": PolicyField(
            "object `{limit, window, technique}`",
            f"`limit` US dollars > 0; `window` {MIN_BUDGET_WINDOW} to {MAX_BUDGET_WINDOW} "
            f"seconds; `technique` {_TECHNIQUES}",
            'A spend cap: one AI Gateway spend-limit rule on the client\'s metadata (a `"*"` '
            "budget is one rule per client without an entry of its own).",
        ),
        "expires": PolicyField(
            "string (ISO 8601)",
            "a date such as `2026-12-31` (its start, 00:00 UTC) or a date-time such as "
            "`2026-12-31T18:00:00Z` (UTC when it has no offset)",
            "From then on every token of the client is refused. Enforced by the Worker.",
        ),
        "endpoints": PolicyField(
            "list of strings",
            "with `models`, `providers`, `rateLimit` or `budget`: one or more "
            '`"METHOD /path-glob"`, METHOD '
            + ", ".join(f"`{method}`" for method in ENDPOINT_METHODS)
            + f", the path as the client sends it (`{OPENAI_CLIENT_ROOT}/...` for OpenAI, "
            f"`/<provider>/...` for the others) where `*` matches anything, at most "
            f"{MAX_ENDPOINT_LENGTH} printable characters without spaces, `?` or `#`",
            "More endpoints a client with a limit may call besides the inference endpoints whose "
            'use AI Gateway counts and the model listings, e.g. `"GET /v1/files/*"`; an endpoint '
            "the gateway does not count (batches, realtime client secrets, ...) only by an entry "
            "that names it. On an opened endpoint only the models a JSON body names are checked. "
            "Enforced by the Worker (`403 endpoint_not_allowed`).",
        ),
    }
)
"""Every field a client policy accepts (`ClientPolicy`'s fields, camelCase), for the reference."""


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
class LogpushSettings:
    """AI Gateway Logpush: the gateway pushes its logs encrypted to this public key."""

    public_key: str


@dataclass(frozen=True)
class OtelExporter:
    """One OpenTelemetry collector the gateway exports its traces to (AI Gateway `otels`)."""

    url: str
    headers: Mapping[str, str] = field(repr=False, default_factory=lambda: MappingProxyType({}))
    authorization: str | None = field(repr=False, default=None)
    content_type: str = "json"


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
        clients=reader.clients(tuple(provider_keys)),
        budget=reader.gateway_budget(),
        client_gateway_headers=reader.client_gateway_headers(),
        analytics=reader.boolean("analytics", True),
        logpush=reader.logpush(),
        scalars=reader.scalars(),
    )
    if not settings.workers_dev and settings.custom_domain is None:
        _fail(
            "workersDev",
            "false with no customDomain",
            "keep workersDev true or set customDomain, or the Worker has no address",
        )
    _check_gateway_scalars(settings)
    secrets = Secrets(
        provider_keys=provider_keys,
        client_tokens=reader.client_tokens(),
        gateway_token=reader.gateway_token(),
        otels=reader.otels(),
    )
    _check_secret_variables(settings, secrets)
    rules = spend_limit_rules(settings, client_names(settings, secrets))
    if len(rules) > MAX_SPEND_LIMIT_RULES:
        clients = len(rules) - (settings.budget is not None)
        gateway = " and the gateway budget" if settings.budget is not None else ""
        _fail(
            "clients",
            f"{len(rules)} spend-limit rules ({clients} client budgets{gateway})",
            f"AI Gateway allows at most {MAX_SPEND_LIMIT_RULES} per gateway; a '*' budget "
            "counts once for every client without an entry of its own",
        )
    return settings, secrets


def _check_gateway_scalars(settings: Settings) -> None:
    """Refuse a scalar setting that would do nothing beside the others."""
    values = settings.scalars
    if values["logClassification"] and not settings.collect_logs:
        _fail(
            "logClassification",
            "true with collectLogs false",
            "log classification reads the gateway's stored logs: turn collectLogs on, or leave "
            "logClassification unset",
        )
    if values["gatewayMaxAttempts"] == 1:
        for key in ("gatewayRetryDelay", "gatewayRetryBackoff"):
            if values[key] != SCALAR_SETTINGS[key].default:
                _fail(
                    key,
                    f"{_show(values[key])} with gatewayMaxAttempts 1 (no gateway retries)",
                    "it shapes the gateway's own retries: set gatewayMaxAttempts above 1, or "
                    f"leave {key} unset",
                )


def _check_secret_variables(settings: Settings, secrets: Secrets) -> None:
    """Refuse secrets that need more Worker variables than Cloudflare allows one Worker.

    Counted exactly as `pulumi up` will pack them: a generated token has a known length, and the
    gateway token, one variable whatever its value, is always bound (configured or created).
    """
    stand_in = "x" * GENERATED_TOKEN_LENGTH
    client_tokens = {
        client: secrets.client_tokens.get(client, (stand_in,))
        for client in client_names(settings, secrets)
    }
    keys = secret_values(secrets.provider_keys, None, None)
    tokens = secret_values({}, client_tokens, None)
    needed = len(keys) + len(tokens) + 1
    limits = WORKER_VARIABLE_LIMITS
    if needed > limits.per_worker:
        _fail(
            "providerKeys" if len(keys) >= len(tokens) else "clientTokens",
            f"keys and client tokens that need {needed} Worker variables ({len(keys)} for "
            f"provider keys, {len(tokens)} for client tokens, 1 for the gateway token, each "
            f"at most {limits.value_bytes} bytes)",
            f"Cloudflare allows {limits.per_worker_free} variables per Worker on Workers Free "
            f"and {limits.per_worker_paid} on Paid, and aigw keeps to {limits.per_worker} so "
            "that any plan takes the stack: remove keys or clients no longer used, or split "
            "them over two stacks",
        )


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


def rate_limit_binding(rate: ClientRateLimit) -> str:
    """The Worker's Rate Limiting binding for a {limit, period}, e.g. `RATE_LIMIT_100_PER_60S`."""
    return f"RATE_LIMIT_{rate.limit}_PER_{rate.period}S"


def rate_limit_bindings(settings: Settings) -> dict[str, ClientRateLimit]:
    """One Rate Limiting binding per distinct {limit, period} among the policies, `"*"` included,
    sorted by period then limit; each is keyed by client name when called."""
    rates = {
        policy.rate_limit for policy in settings.clients.values() if policy.rate_limit is not None
    }
    ordered = sorted(rates, key=lambda rate: (rate.period, rate.limit))
    return {rate_limit_binding(rate): rate for rate in ordered}


def _fail(key: str, given: str, allowed: str) -> NoReturn:
    """Raise the one message shape: the key, what was given, what is allowed."""
    raise SettingsError(f"{NAMESPACE}:{key}: got {given}; {allowed}")


def _show(value: object) -> str:
    """A non-secret value as an error message shows it: text quoted, anything else as JSON."""
    # `default=str` so that a date YAML decoded into an object still shows.
    return json.dumps(value, default=str) if not isinstance(value, str) else repr(value)


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

    def scalars(self) -> Mapping[str, int | bool | str]:
        """Every `SCALAR_SETTINGS` value, each checked by its declaration."""
        values = {
            key: setting.read(key, self._raw.get(key)) for key, setting in SCALAR_SETTINGS.items()
        }
        return MappingProxyType(values)

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
        return default if value is None else _boolean(key, value)

    def rate_limit(self) -> RateLimit | None:
        value = self._structured("rateLimit", '{"limit", "interval", "technique"}')
        if value is None:
            return None
        fields = _object("rateLimit", value, {"limit", "interval"}, {"technique"})
        technique = fields.get("technique", "fixed")
        if technique not in ("fixed", "sliding"):
            _fail("rateLimit.technique", _show(technique), "expected 'fixed' or 'sliding'")
        return RateLimit(
            limit=_whole("rateLimit.limit", fields["limit"], 1, MAX_GATEWAY_RATE_LIMIT),
            interval=_whole("rateLimit.interval", fields["interval"], 1, MAX_GATEWAY_RATE_INTERVAL),
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

    def client_gateway_headers(self) -> tuple[str, ...]:
        key = "clientGatewayHeaders"
        value = self._structured(key, "a list of cf-aig-* header names")
        if value is None:
            return DEFAULT_CLIENT_GATEWAY_HEADERS
        if not isinstance(value, list):
            _fail(
                key,
                _show(value),
                'expected a list of cf-aig-* header names such as ["cf-aig-skip-cache"], or []',
            )
        names: list[str] = []
        for position, name in enumerate(value):
            where = f"{key}[{position}]"
            lowered = name.strip().lower() if isinstance(name, str) else None
            if lowered is None or not _GATEWAY_HEADER.fullmatch(lowered):
                _fail(where, _show(name), "expected an AI Gateway header name: cf-aig-<name>")
            if lowered in OPERATOR_GATEWAY_HEADERS:
                _fail(
                    where,
                    f"{name!r}, a {OPERATOR_GATEWAY_HEADERS[lowered]} control",
                    "cost, logging, retries, routing, BYOK, authorization and metadata "
                    "controls are the operator's: no client may send them",
                )
            if lowered not in names:
                names.append(lowered)
        return tuple(names)

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
                _fits_one_variable(where, "a key", key)
                if key in seen:
                    _fail(
                        where,
                        f"the same key as providerKeys.{slug}[{seen[key]}]",
                        "each key must appear once, or rotation would favour it",
                    )
                seen[key] = position
            pools[slug] = tuple(keys)
        return pools

    def client_tokens(self) -> Mapping[str, tuple[str, ...]]:
        value = self._structured("clientTokens", '{"<client name>": "<token>" or ["<token>", …]}')
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict) or not value:
            _fail(
                "clientTokens",
                _kind(value),
                'expected an object such as {"laptop": "<token>"}, '
                "or leave it unset to generate one",
            )
        seen: dict[str, str] = {}
        tokens: dict[str, tuple[str, ...]] = {}
        for name, given in value.items():
            _client_name("clientTokens", name)
            if isinstance(given, list):
                if not given:
                    _fail(
                        f"clientTokens.{name}",
                        "an empty list",
                        "expected a token, or a list of one or more while the client rotates",
                    )
                paths = [f"clientTokens.{name}[{position}]" for position in range(len(given))]
            else:
                given, paths = [given], [f"clientTokens.{name}"]
            for where, token in zip(paths, given, strict=True):
                _client_token(where, token)
                _fits_one_variable(where, "a name:token entry", f"{name}:{token}")
                if token in seen:
                    _fail(
                        where,
                        f"the same token as {seen[token]}",
                        "each client needs its own token, and each token is listed once",
                    )
                seen[token] = where
            tokens[name] = tuple(cast(list[str], given))
        return MappingProxyType(tokens)

    def clients(self, providers: tuple[str, ...]) -> Mapping[str, ClientPolicy]:
        value = self._structured("clients", '{"<client name>": {<policy>}, "*": {<policy>}}')
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            _fail(
                "clients",
                _show(value),
                'expected an object of policies such as {"ci": {"models": ["gpt-4o-mini"]}}',
            )
        policies: dict[str, ClientPolicy] = {}
        for name, policy in value.items():
            if name != ALL_CLIENTS:
                _client_name("clients", name, also='or "*" (every client without an entry)')
            policies[name] = self.policy(f"clients.{name}", policy, providers)
        return MappingProxyType(policies)

    def policy(self, key: str, value: object, providers: tuple[str, ...]) -> ClientPolicy:
        """One client's policy at `key`; null or {} is a client with no restriction."""
        if value is None:
            return ClientPolicy()
        fields = _object(key, value, set(), set(CLIENT_POLICY_FIELDS))
        rate_limit = None
        if fields.get("rateLimit") is not None:
            rate = _object(f"{key}.rateLimit", fields["rateLimit"], {"limit", "period"}, set())
            period = rate["period"]
            if _as_whole(period) not in RATE_LIMIT_PERIODS:
                _fail(
                    f"{key}.rateLimit.period",
                    _show(period),
                    "expected 10 or 60 (seconds): the periods Workers Rate Limiting allows",
                )
            rate_limit = ClientRateLimit(
                limit=_whole(f"{key}.rateLimit.limit", rate["limit"], 1, MAX_CLIENT_RATE_LIMIT),
                period=_whole(f"{key}.rateLimit.period", period, *RATE_LIMIT_PERIODS),
            )
        models = _model_patterns(f"{key}.models", fields.get("models"))
        endpoints = _endpoints(f"{key}.endpoints", fields.get("endpoints"), providers)
        limits = ("models", "providers", "rateLimit", "budget")
        if endpoints is not None and all(fields.get(name) is None for name in limits):
            _fail(
                f"{key}.endpoints",
                f"{_show(fields['endpoints'])} for a client without a limit",
                "endpoints opens endpoints to a client with models, providers, rateLimit or "
                "budget; a client without any may already call every endpoint",
            )
        return ClientPolicy(
            models=models,
            providers=_provider_list(f"{key}.providers", fields.get("providers"), providers),
            rate_limit=rate_limit,
            budget=_budget(f"{key}.budget", fields.get("budget")),
            expires=_expiry(f"{key}.expires", fields.get("expires")),
            endpoints=endpoints,
        )

    def gateway_budget(self) -> Budget | None:
        return _budget("budget", self._structured("budget", '{"limit", "window", "technique"}'))

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
        _fits_one_variable("gatewayToken", "a token", value)
        return value

    def logpush(self) -> LogpushSettings | None:
        value = self._structured("logpush", '{"publicKey"}')
        if value is None:
            return None
        key = _object("logpush", value, {"publicKey"}, set())["publicKey"]
        if not isinstance(key, str) or "PUBLIC KEY-----" not in key:
            _fail(
                "logpush.publicKey",
                _show(key),
                "expected a PEM public key (-----BEGIN PUBLIC KEY----- ...)",
            )
        return LogpushSettings(public_key=key.strip())

    def otels(self) -> tuple[OtelExporter, ...]:
        # A secret: values are described by kind only, never shown.
        value = self._structured("otels", "a list of {url, headers, authorization, contentType}")
        if value is None:
            return ()
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_OTEL_EXPORTERS:
            _fail("otels", _kind(value), f"expected a list of 1 to {MAX_OTEL_EXPORTERS} exporters")
        return tuple(self.otel(f"otels[{index}]", entry) for index, entry in enumerate(value))

    def otel(self, key: str, entry: object) -> OtelExporter:
        if not isinstance(entry, dict):
            _fail(
                key, _kind(entry), "expected an object {url, headers, authorization, contentType}"
            )
        extra = sorted(set(entry) - {"url", "headers", "authorization", "contentType"})
        if extra or "url" not in entry:
            problem = f"unknown field {extra[0]!r}" if extra else "no url"
            _fail(
                key,
                f"an object with {problem}",
                "fields are url, headers, authorization, contentType",
            )
        url = entry["url"]
        if not isinstance(url, str) or not re.fullmatch(r"https://[^\s/?#]+(/[^\s]*)?", url):
            _fail(f"{key}.url", "a value that is not an https:// URL", "expected https://host/path")
        headers = entry.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(name, str)
            and _HEADER_NAME.fullmatch(name)
            and isinstance(text, str)
            and "\n" not in text
            and "\r" not in text
            for name, text in headers.items()
        ):
            _fail(
                f"{key}.headers",
                _kind(headers) if not isinstance(headers, dict) else "an object with a bad entry",
                "expected an object of HTTP header names to one-line text values",
            )
        authorization = entry.get("authorization")
        if authorization is not None and (
            not isinstance(authorization, str) or not authorization.strip() or "\n" in authorization
        ):
            _fail(f"{key}.authorization", _kind(authorization), "expected one line of text")
        content_type = entry.get("contentType", "json")
        if content_type not in OTEL_CONTENT_TYPES:
            _fail(
                f"{key}.contentType",
                _show(content_type),
                "expected " + " or ".join(f"`{kind}`" for kind in OTEL_CONTENT_TYPES),
            )
        return OtelExporter(
            url=url,
            headers=MappingProxyType(dict(headers)),
            authorization=authorization,
            content_type=str(content_type),
        )


def _kind(value: object) -> str:
    """What kind of value a secret key held, without showing it."""
    if value == {}:
        return "an empty object"
    kind = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return kind.get(type(value), f"a {type(value).__name__}")


def _boolean(key: str, value: object) -> bool:
    """`value` (a boolean or its text, as Pulumi passes it) as a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    _fail(key, _show(value), "expected true or false")


def _whole(key: str, value: object, low: int, high: int) -> int:
    """`value` (a number or its text) as a whole number from `low` to `high`."""
    number = _as_whole(value)
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


def _client_name(key: str, name: str, also: str = "") -> None:
    """Client names become `name:token` entries and gateway metadata: a safe, short alphabet."""
    if not _CLIENT_NAME.fullmatch(name):
        _fail(
            key,
            f"client name {name!r}",
            "names are 1-64 letters, digits, '.', '_' or '-'" + (f", {also}" if also else ""),
        )


def _client_token(key: str, token: object) -> None:
    """A client token: text, long enough, one word; described in errors, never shown."""
    if not isinstance(token, str):
        _fail(
            key,
            f"{_kind(token)} instead of text",
            "set the token as a string (pulumi config set --type string …)",
        )
    if len(token) < MIN_CLIENT_TOKEN_LENGTH:
        _fail(
            key,
            f"a token shorter than {MIN_CLIENT_TOKEN_LENGTH} characters",
            f"use at least {MIN_CLIENT_TOKEN_LENGTH} random characters",
        )
    if BINDING_SEPARATORS.search(token):
        _fail(key, "a token containing white space or a comma", "tokens are single words")


def _fits_one_variable(key: str, what: str, entry: str) -> None:
    """A key or token is never split, so its binding entry must fit one Worker variable."""
    size = entry_bytes(entry)
    limit = WORKER_VARIABLE_LIMITS.value_bytes
    if size > limit:
        _fail(
            key,
            f"{what} of {size} bytes",
            f"Cloudflare stores at most {limit} bytes in one Worker variable",
        )


def _as_whole(value: object) -> int | None:
    """`value` (a number or its text) as a whole number, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    return None


def _budget(key: str, value: object) -> Budget | None:
    """A spend cap `{limit, window, technique}` at `key`, or None when unset."""
    if value is None:
        return None
    fields = _object(key, value, {"limit", "window"}, {"technique"})
    technique = fields.get("technique", "fixed")
    if technique not in ("fixed", "sliding"):
        _fail(f"{key}.technique", _show(technique), "expected 'fixed' or 'sliding'")
    return Budget(
        limit=_dollars(f"{key}.limit", fields["limit"]),
        window=_whole(f"{key}.window", fields["window"], MIN_BUDGET_WINDOW, MAX_BUDGET_WINDOW),
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
        _fail(
            key, _show(value), "expected an amount of US dollars greater than 0, such as 25 or 2.5"
        )
    return amount


def _model_patterns(key: str, value: object) -> tuple[str, ...] | None:
    """A non-empty list of model names or `*` globs, or None when unset."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        _fail(key, _show(value), 'expected a non-empty list such as ["gpt-4o-mini", "claude-*"]')
    for position, pattern in enumerate(value):
        if (
            not isinstance(pattern, str)
            or len(pattern) > MAX_MODEL_PATTERN_LENGTH
            or not _MODEL_PATTERN.fullmatch(pattern)
        ):
            _fail(
                f"{key}[{position}]",
                _show(pattern),
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
        _fail(key, _show(value), 'expected a non-empty list such as ["GET /v1/files/*"]')
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
            _fail(
                where,
                _show(entry),
                f'expected "METHOD /path-glob": METHOD one of {", ".join(ENDPOINT_METHODS)}, '
                f"the path at most {MAX_ENDPOINT_LENGTH} printable characters without spaces, "
                '? or #, where * matches anything, e.g. "GET /v1/files/*"',
            )
        method, glob = match.group(1), match.group(2)
        root = glob[1:].partition("/")[0]
        if "*" not in root and root not in roots:
            _fail(
                where,
                _show(entry),
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
        _fail(key, _show(value), 'expected a non-empty list of provider slugs such as ["openai"]')
    for position, slug in enumerate(value):
        where = f"{key}[{position}]"
        if not isinstance(slug, str) or slug not in PROVIDERS:
            _fail(where, _show(slug), f"known providers are {', '.join(PROVIDERS)}")
        if slug not in configured:
            # The Worker only routes to providers with keys: allowing another would allow nothing.
            _fail(
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
        _fail(
            key,
            _show(value),
            "expected an ISO 8601 date such as 2026-12-31 (its start, 00:00 UTC) or date-time "
            "such as 2026-12-31T18:00:00Z (UTC when no offset is given)",
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
