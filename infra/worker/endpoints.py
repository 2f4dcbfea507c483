"""The endpoints a client with `models` may call, and every model a request names (DESIGN §4).

A `models` list is isolation, not a field check: such a client may call only the endpoints in
`ENDPOINTS` (inference endpoints where aigw knows every place a model is named, and the model
listings) and those its policy's `endpoints` opens. Every model a request names is checked: the
path's, and every string a body holds under a key that names a model (`model`, `models`,
`tools[].model`, `answering_model`, `fallbacks`, ...), wherever it sits, but in conversation
content. A body that cannot be read the same way here and upstream is refused: one that is not a
JSON object, names a key twice, or nests deeper than `MAX_JSON_DEPTH`. How a body is read for the
models it names is `body_models`; this module is the endpoint table and its matching.

`worker_template/endpoints.js.j2` implements the same functions; the table and the constants are
rendered into it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.providers import Provider
from infra.worker.body_models import top_level_model
from infra.worker.routing import decoded_path, percent_decode

PATH_MODEL = "{model}"
"""A template segment (or the part of one before `:<method>`) that names the model: checked."""
PATH_MODEL_REST = "{model*}"
"""The rest of the path names the model, from a segment starting with `@` (Workers AI)."""
PATH_ID = "{id}"
"""A template segment naming a listed entry (a model listing's one model): not checked."""
MODEL_REST_START = "@"
UNREADABLE_MODEL_CHARACTERS = ("?", "#")
"""A model name holding one of these, once decoded, is refused: the path and the model come from
the request target alone, and a `?` or `#` could end the path wherever it is decoded."""
GOOGLE_MODEL_PREFIX = "models/"
"""Google's resource names (`models/gemini-2.0-flash`): a body's model is checked without it."""
GOOGLE = "google-ai-studio"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint a client with `models` may call: `path` is the client's path (`/v1/...` for
    OpenAI), with at most one of `PATH_MODEL`, `PATH_MODEL_REST`, `PATH_ID`."""

    method: str
    path: str
    reads_body: bool = False
    """The request has a JSON object body that names models (every one is checked)."""
    requires_model: bool = False
    """The body's top-level `model` must name one: without it the provider would pick one."""
    tool_models: tuple[tuple[str, str], ...] = ()
    """(tool type, key) pairs: a `tools[]` entry of that type must name a model at that key
    (dotted), or the provider runs a default one."""
    refused_fields: tuple[str, ...] = ()
    """Top-level body fields that run models the request does not name (stored presets, plugins,
    prompts): a body with one is refused."""
    refused_tool_prefix: str | None = None
    """`tools[]` whose `type` starts with this are server tools that run models of their own."""
    deferred_fields: tuple[str, ...] = ()
    """Top-level body fields, or query parameters, that (unless `false` or `null`) run the
    request's work after the answer AI Gateway logs (OpenAI Responses `background`: the response is
    created queued, without usage, and generated later; Workers AI `queueRequest`, its batch API):
    refused to every client with a limit, whose budget would not see that work."""


def _openai_style(
    root: str,
    names: tuple[str, ...],
    *,
    listing: bool = True,
    refused_fields: tuple[str, ...] = (),
    tool_models: tuple[tuple[str, str], ...] = (),
    refused_tool_prefix: str | None = None,
    deferred_fields: tuple[str, ...] = (),
) -> tuple[Endpoint, ...]:
    """POST `<root>/<name>` for each name, each naming its model in the body's `model`, and (with
    `listing`) GET `<root>/models` and `<root>/models/{id}`."""
    posts = tuple(
        Endpoint(
            "POST",
            f"{root}/{name}",
            reads_body=True,
            requires_model=True,
            tool_models=tool_models,
            refused_fields=refused_fields,
            refused_tool_prefix=refused_tool_prefix,
            deferred_fields=deferred_fields,
        )
        for name in names
    )
    gets = (Endpoint("GET", f"{root}/models"), Endpoint("GET", f"{root}/models/{PATH_ID}"))
    return posts + (gets if listing else ())


_GOOGLE_METHODS = (
    "generateContent",
    "streamGenerateContent",
    "countTokens",
    "embedContent",
    "batchEmbedContents",
    "predict",
)
_OPENROUTER_REFUSED = ("plugins", "preset", "route")
"""OpenRouter fields that run models the request does not name: plugins (fusion, the auto
router), stored presets, and the legacy `route: "fallback"`."""
_CHAT = ("chat/completions",)

ENDPOINTS: Mapping[str, tuple[Endpoint, ...]] = {
    "openai": (
        *_openai_style(
            "/v1",
            (
                "chat/completions",
                "completions",
                "embeddings",
                "images/generations",
                "audio/speech",
                "moderations",
            ),
        ),
        # A stored prompt carries its own model; image generation runs gpt-image-1 when unnamed.
        *_openai_style(
            "/v1",
            ("responses", "responses/input_tokens"),
            listing=False,
            refused_fields=("prompt",),
            tool_models=(("image_generation", "model"),),
            # platform.openai.com/docs/guides/background: `background: true` returns at once.
            deferred_fields=("background",),
        ),
    ),
    "anthropic": _openai_style("/anthropic/v1", ("messages", "messages/count_tokens", "complete")),
    GOOGLE: (
        *(
            Endpoint("POST", f"/{GOOGLE}/{version}/models/{PATH_MODEL}:{method}", reads_body=True)
            for version in ("v1", "v1beta")
            for method in _GOOGLE_METHODS
        ),
        *(
            endpoint
            for version in ("v1", "v1beta")
            for endpoint in (
                Endpoint("GET", f"/{GOOGLE}/{version}/models"),
                Endpoint("GET", f"/{GOOGLE}/{version}/models/{PATH_ID}"),
            )
        ),
        *_openai_style(
            f"/{GOOGLE}/v1beta/openai", ("chat/completions", "embeddings", "images/generations")
        ),
    ),
    "groq": _openai_style("/groq", _CHAT),
    "deepseek": _openai_style("/deepseek", _CHAT),
    "mistral": _openai_style("/mistral/v1", ("chat/completions", "fim/completions", "embeddings")),
    # The gateway takes OpenRouter's paths with and without /v1.
    "openrouter": tuple(
        endpoint
        for root in ("/openrouter", "/openrouter/v1")
        for endpoint in _openai_style(
            root,
            ("chat/completions", "completions"),
            refused_fields=_OPENROUTER_REFUSED,
            refused_tool_prefix="openrouter:",
        )
    ),
    "xai": _openai_style("/xai/v1", _CHAT),
    "workers-ai": (
        # developers.cloudflare.com/workers-ai/features/batch-api/: `queueRequest` queues a batch.
        Endpoint(
            "POST",
            f"/workers-ai/{PATH_MODEL_REST}",
            reads_body=True,
            deferred_fields=("queueRequest",),
        ),
        *_openai_style("/workers-ai/v1", ("chat/completions", "embeddings"), listing=False),
    ),
    "cerebras": _openai_style("/cerebras", ("chat/completions", "completions")),
    "perplexity-ai": _openai_style("/perplexity-ai", _CHAT, listing=False),
}
"""Per provider slug, the endpoints a client with `models` may call without an `endpoints` entry.

Multipart endpoints (audio transcriptions and translations, image edits) are not here: their model
is a form field among file parts, and reading it would take a second multipart parser whose
reading of a crafted body (a field twice, odd quoting) can differ from the provider's; a client
that needs them gets them from its operator's `endpoints`, unchecked."""
PATH_MODEL_PROVIDERS = tuple(
    slug
    for slug, endpoints in ENDPOINTS.items()
    if any(PATH_MODEL in e.path or PATH_MODEL_REST in e.path for e in endpoints)
)
"""The providers whose paths name the model (Google's `models/<model>:<method>`, Workers AI's
`@cf/...`): `request_model` reads their paths' model first."""


@dataclass(frozen=True)
class UncountedEndpoint:
    """Endpoints whose use AI Gateway does not count (DESIGN §4): they mint a provider credential
    the client then uses without the gateway, or run work after the request the gateway saw, so
    no budget or log sees it. Closed to every client with a limit unless an `endpoints` entry
    opens it by name."""

    path: str
    """A glob on the decoded, lower-cased client path, where `*` matches any run of characters."""
    name: str
    """What an `endpoints` entry must spell out (outside its `*`s, in any letter case) to open
    these: `"* /v1/*"` opens no such endpoint, `"POST /v1/batches"` opens the batches."""


# Each provider's API reference, read 2026-12: which calls hand out a credential or start work
# that runs after the answer the gateway logs. Matched on any provider's route, since the
# OpenAI-compatible providers copy OpenAI's paths (Groq and Mistral have batches and fine-tuning).
UNCOUNTED_ENDPOINTS: tuple[UncountedEndpoint, ...] = (
    # OpenAI Realtime: client secrets and (beta) sessions and transcription sessions mint an
    # ephemeral key the client uses with OpenAI directly; calls start a WebRTC session whose
    # audio never passes the gateway (platform.openai.com/docs/api-reference/realtime-sessions).
    UncountedEndpoint("*/realtime", "realtime"),
    UncountedEndpoint("*/realtime/*", "realtime"),
    # ChatKit sessions mint a client secret too (platform.openai.com/docs/api-reference/chatkit).
    UncountedEndpoint("*/chatkit/*", "chatkit"),
    # Batches: OpenAI /v1/batches (platform.openai.com/docs/api-reference/batch), Anthropic
    # /v1/messages/batches (docs.anthropic.com/en/api/creating-message-batches), Google
    # batches/* (ai.google.dev/api/batch-api), Groq and others alike: run within 24 hours.
    UncountedEndpoint("*/batches", "batches"),
    UncountedEndpoint("*/batches/*", "batches"),
    UncountedEndpoint("*/batch/*", "batch"),
    # Google's batch methods on a model, its long-running predictions (Veo) and its ephemeral
    # tokens for the Live API (ai.google.dev/gemini-api/docs/ephemeral-tokens).
    UncountedEndpoint("*:batchgeneratecontent", "batchgeneratecontent"),
    UncountedEndpoint("*:asyncbatchembedcontent", "asyncbatchembedcontent"),
    UncountedEndpoint("*:predictlongrunning", "predictlongrunning"),
    UncountedEndpoint("*/auth_tokens", "auth_tokens"),
    UncountedEndpoint("*/auth_tokens/*", "auth_tokens"),
    UncountedEndpoint("*bidigeneratecontent*", "bidigeneratecontent"),
    # Training and storage billed by the hour or gigabyte: fine-tuning (OpenAI, Mistral), Google
    # tuned models and cached contents (ai.google.dev/api/caching), OpenAI vector stores and
    # code-interpreter containers.
    UncountedEndpoint("*/fine_tuning/*", "fine_tuning"),
    UncountedEndpoint("*/tunedmodels*", "tunedmodels"),
    UncountedEndpoint("*/cachedcontents*", "cachedcontents"),
    UncountedEndpoint("*/vector_stores*", "vector_stores"),
    UncountedEndpoint("*/containers*", "containers"),
    # Work run after the request: Assistants runs, evals, video generation (Sora), Perplexity's
    # async chat completions.
    UncountedEndpoint("*/runs", "runs"),
    UncountedEndpoint("*/runs/*", "runs"),
    UncountedEndpoint("*/evals*", "evals"),
    UncountedEndpoint("*/videos*", "videos"),
    UncountedEndpoint("*/async/*", "async"),
    # OpenRouter's key provisioning and credit purchases (openrouter.ai/docs/api-reference).
    UncountedEndpoint("*/keys", "keys"),
    UncountedEndpoint("*/keys/*", "keys"),
    UncountedEndpoint("*/credits/*", "credits"),
)
"""Endpoints closed to every client with a limit unless opened by name; none is in `ENDPOINTS`."""


def glob_matches(pattern: str, name: str) -> bool:
    """Whether `name` matches `pattern` whole, where `*` matches any run of characters."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return name == pattern
    first, last = parts[0], parts[-1]
    end = len(name) - len(last)
    if end < len(first) or not name.startswith(first) or not name.endswith(last):
        return False
    position = len(first)
    # Leftmost placement of each middle part is enough: a later one leaves less room for the rest.
    # Each must end before the suffix starts, or it would use the suffix's characters twice.
    for part in parts[1:-1]:
        found = name.find(part, position, end)
        if found == -1:
            return False
        position = found + len(part)
    return True


def client_path(slug: str, rest: str) -> str:
    """The path endpoints are matched on: `/v1<rest>` for OpenAI (whichever route the client took),
    `/<slug><rest>` for any other provider."""
    return f"/v1{rest}" if slug == "openai" else f"/{slug}{rest}"


def match_template(template: str, path: str) -> tuple[bool, str | None]:
    """Whether `path` (decoded) is `template`'s, and the model its path names (None if none)."""
    if PATH_MODEL_REST in template:
        prefix = template.partition(PATH_MODEL_REST)[0]
        model = path[len(prefix) :]
        if path.startswith(prefix) and model.startswith(MODEL_REST_START):
            return True, model
        return False, None
    for slot in (PATH_MODEL, PATH_ID):
        if slot in template:
            prefix, _, suffix = template.partition(slot)
            end = len(path) - len(suffix)
            middle = path[len(prefix) : end]
            fits = (
                end > len(prefix)
                and path.startswith(prefix)
                and path.endswith(suffix)
                and "/" not in middle
                and (slot == PATH_ID or ":" not in middle)
            )
            return fits, middle if fits and slot == PATH_MODEL else None
    return path == template, None


def table_endpoint(slug: str, method: str, path: str) -> tuple[Endpoint | None, str | None]:
    """The endpoint of `ENDPOINTS` that `method` and the decoded `path` call, and the model its
    path names; (None, None) when it is none of them."""
    for endpoint in ENDPOINTS.get(slug, ()):
        if endpoint.method == method:
            fits, model = match_template(endpoint.path, path)
            if fits:
                return endpoint, model
    return None, None


def opened(endpoints: tuple[tuple[str, str], ...] | None, method: str, path: str) -> bool:
    """Whether a policy's `endpoints` entry ("METHOD /path-glob") opens `method` on `path`; an
    uncounted endpoint only by an entry that names it (`names_endpoint`)."""
    closed = uncounted(path)
    return any(
        (allowed in ("*", method))
        and glob_matches(glob, path)
        and (closed is None or names_endpoint(glob, closed))
        for allowed, glob in endpoints or ()
    )


def uncounted(path: str) -> UncountedEndpoint | None:
    """The uncounted endpoint the decoded client `path` calls, if any (in any letter case)."""
    lowered = path.lower()
    return next((u for u in UNCOUNTED_ENDPOINTS if glob_matches(u.path, lowered)), None)


def names_endpoint(glob: str, endpoint: UncountedEndpoint) -> bool:
    """Whether an `endpoints` path glob spells out `endpoint`'s name outside its `*`s."""
    return any(endpoint.name in part for part in glob.lower().split("*"))


def missing_model(endpoint: Endpoint, document: dict[str, object]) -> str | None:
    """Why a body of `endpoint` runs a model it does not name, or None: the place to name one, or
    the field that picks models aigw cannot read."""
    model = document.get("model")
    if endpoint.requires_model and not (isinstance(model, str) and model):
        return 'send a JSON body with a "model" field'
    for field in endpoint.refused_fields:
        if field in document:
            return f'"{field}" picks models this request does not name: leave it out'
    tools = document.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str):
            continue
        prefix = endpoint.refused_tool_prefix
        if prefix is not None and kind.startswith(prefix):
            return f"{prefix}* server tools run models of their own: leave them out"
        for tool_type, key in endpoint.tool_models:
            if kind == tool_type and not _names_model(tool, key):
                return f'a "{tool_type}" tool runs a default model: name one in its "{key}"'
    return None


def deferred_field(endpoint: Endpoint, document: object) -> str | None:
    """The field of a body that defers its work past the answer the gateway logs, or None."""
    if not isinstance(document, dict):
        return None
    for field in endpoint.deferred_fields:
        value = document.get(field, False)
        if value is not False and value is not None:
            return field
    return None


def deferred_parameter(endpoint: Endpoint, query: str) -> str | None:
    """The query parameter (its decoded name in any letter case) that defers the request's work
    past the answer the gateway logs, unless its value is empty or `false`; or None."""
    deferred = {field.lower(): field for field in endpoint.deferred_fields}
    for part in query.split("&") if deferred and query else ():
        name, _, value = part.partition("=")
        field = deferred.get(percent_decode(name).lower())
        if field is not None and percent_decode(value).lower() not in ("", "false"):
            return field
    return None


def _names_model(tool: dict[str, object], key: str) -> bool:
    value: object = tool
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return isinstance(value, str) and value != ""


def checked_name(slug: str, model: str, from_body: bool) -> str:
    """The name a model is checked as: a Google body's `models/<model>` without `models/`."""
    if from_body and slug == GOOGLE and model.startswith(GOOGLE_MODEL_PREFIX):
        return model[len(GOOGLE_MODEL_PREFIX) :]
    return model


def request_model(provider: Provider, method: str, rest: str, body: bytes) -> str | None:
    """The model a request names, read once per request for the key pool (per model for
    `key_limits.MODEL_LIMIT_PROVIDERS`) and the analytics data point: its path's, for a provider
    whose paths name it (`PATH_MODEL_PROVIDERS`), else its body's top-level `model`, read without
    a parse (`top_level_model`); None when it names none."""
    slug = provider.slug
    # Only these providers name the model in the path; matching the endpoint table costs more
    # than the body's read, so the others skip it.
    if slug in PATH_MODEL_PROVIDERS:
        _, model = table_endpoint(slug, method, client_path(slug, decoded_path(rest)))
        if model is not None:
            return model
    return top_level_model(body) if method == "POST" else None
