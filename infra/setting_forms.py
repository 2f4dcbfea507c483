"""Each setting declared once: type and limits, for Pulumi.yaml, the reference and the readers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from infra.providers import PROVIDERS
from infra.secret_bindings import WORKER_VARIABLE_LIMITS
from infra.setting_values import boolean, fail, show, whole

RateTechnique = Literal["fixed", "sliding"]

MIN_CLIENT_TOKEN_LENGTH = 16
MAX_CACHE_TTL = 30 * 24 * 3600
DEFAULT_MAX_ATTEMPTS = 3
MAX_ATTEMPTS = 10
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_BODY_BYTES = 100 * 1024 * 1024  # the Workers request-body limit on the Free and Pro plans
LOG_RETENTION_RANGE = (10_000, 10_000_000)  # what the AI Gateway API accepts for log_management
RATE_LIMIT_PERIODS = (10, 60)  # the only periods a Workers Rate Limiting binding accepts
MAX_CLIENT_RATE_LIMIT = 1_000_000
MIN_BUDGET_WINDOW = 60
MAX_BUDGET_WINDOW = 366 * 24 * 3600
MAX_SPEND_LIMIT_RULES = 20  # AI Gateway allows at most 20 spend-limit rules per gateway
MAX_OTEL_EXPORTERS = 10  # a bound of aigw's own: one or two collectors is the common case
OTEL_CONTENT_TYPES = ("json", "protobuf")  # pulumi-cloudflare 6.23 AiGatewayOtelArgs.content_type
MAX_MODEL_PATTERN_LENGTH = 256
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
            return whole(key, value, *self.bounds)
        if self.kind == "boolean":
            return boolean(key, value)
        if not isinstance(value, str) or value not in self.choices:
            fail(key, show(value), f"expected one of {', '.join(map(repr, self.choices))}")
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
"""Settings declared once each (`ScalarSetting`), read by `_Reader.scalars` in infra/settings.py."""


def check_scalar_settings(values: Mapping[str, int | bool | str], collect_logs: bool) -> None:
    """Refuse a scalar setting that would do nothing beside the others (or beside collectLogs)."""
    if values["logClassification"] and not collect_logs:
        fail(
            "logClassification",
            "true with collectLogs false",
            "log classification reads the gateway's stored logs: turn collectLogs on, or leave "
            "logClassification unset",
        )
    if values["gatewayMaxAttempts"] == 1:
        for key in ("gatewayRetryDelay", "gatewayRetryBackoff"):
            if values[key] != SCALAR_SETTINGS[key].default:
                fail(
                    key,
                    f"{show(values[key])} with gatewayMaxAttempts 1 (no gateway retries)",
                    "it shapes the gateway's own retries: set gatewayMaxAttempts above 1, or "
                    f"leave {key} unset",
                )


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

    The reference (docs/reference/settings.md) is generated from these, the limits above (which
    the readers enforce), and Pulumi.yaml's descriptions and defaults.
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
