"""The endpoint table and body reading of infra/worker/endpoints.py, where vectors do not reach."""

from __future__ import annotations

import pytest

from infra.providers import PROVIDERS
from infra.worker.body_models import AmbiguousJson, NotJson, body_models, is_model_key, read_json
from infra.worker.endpoints import (
    ENDPOINTS,
    PATH_ID,
    PATH_MODEL,
    PATH_MODEL_REST,
    client_path,
    opened,
    uncounted,
)
from infra.worker.scrubbing import redacted, secret_forms


def test_every_provider_has_its_endpoints() -> None:
    """Every provider aigw routes to has a table entry, each path under its own route, with at
    most one slot, and the methods the Worker proxies."""
    assert sorted(ENDPOINTS) == sorted(PROVIDERS)
    for slug, endpoints in ENDPOINTS.items():
        root = client_path(slug, "/")
        for endpoint in endpoints:
            assert endpoint.path.startswith(root), endpoint
            slots = [s for s in (PATH_MODEL, PATH_MODEL_REST, PATH_ID) if s in endpoint.path]
            assert len(slots) <= 1, endpoint
            assert endpoint.method in ("GET", "POST"), endpoint
            # A GET carries no body upstream: it names no model there.
            assert not (endpoint.method == "GET" and endpoint.reads_body), endpoint


@pytest.mark.parametrize(
    ("key", "names_model"),
    [
        ("model", True),
        ("Model", True),
        ("models", True),
        ("answering_model", True),
        ("reasoningModel", True),
        ("model_id", True),
        ("embedding-model-name", True),
        ("fallbacks", True),
        ("modalities", False),
        ("fallback_credit_token", False),
        ("allow_fallbacks", False),
        ("model_config", False),
    ],
)
def test_keys_that_name_models(key: str, names_model: bool) -> None:
    """A key names a model when it ends with model(s), model id or model name (any case, with or
    without _ and -), or is Anthropic's fallbacks; other keys merely containing the word do not."""
    assert is_model_key(key) is names_model


def test_models_anywhere_but_in_content() -> None:
    """Strings under model keys at any depth are found, lists giving each string; conversation
    content and metadata are not looked into."""
    document = read_json(
        b'{"model":"a","models":["b",{"model":"c"},7],"x":[{"y":{"answering_model":"d"}}],'
        b'"messages":[{"model":"no"}],"input":{"model":"no"},"metadata":{"model":"no"},'
        b'"contents":[{"model":"no"}],"model_count":3,"fallbacks":"default"}'
    )
    assert body_models(document) == ["a", "b", "c", "d", "default"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", NotJson),
        (b"{", NotJson),
        (b'{"model":NaN}', NotJson),
        (b'{"a":1}{"b":2}', NotJson),
        (b'{"a":{"b":1,"b":2}}', AmbiguousJson),
        (b'{"a":1,"\\u0061":2}', AmbiguousJson),
        (b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", AmbiguousJson),
        (b"[" * 5000 + b"]" * 5000, AmbiguousJson),
    ],
)
def test_bodies_two_readers_may_read_apart(body: bytes, error: type[Exception]) -> None:
    """Text JSON.parse refuses is not JSON; a key twice in one object, escaped or not, and nesting
    past the limit (even past Python's own recursion limit) are ambiguous."""
    with pytest.raises(error):
        read_json(body)


def test_read_json_reads_as_json_parse_does() -> None:
    """A BOM is dropped, a huge integer is a number, the same key in two objects is no repeat."""
    document = read_json(b'\xef\xbb\xbf{"n":' + b"9" * 400 + b',"a":{"k":1},"b":{"k":2}}')
    assert isinstance(document, dict) and document["a"] == {"k": 1.0}


def test_redaction_prefers_the_longest_secret_at_each_place() -> None:
    """A secret that contains another is replaced whole, JSON-escaped forms too; text without a
    secret comes back as it was."""
    forms = secret_forms(("sk-a", "sk-ab/c", ""))
    assert redacted(b"x sk-ab/c y sk-ab\\/c z sk-a", forms) == (
        b"x [redacted] y [redacted] z [redacted]"
    )
    assert redacted(b"nothing here", forms) == b"nothing here"


@pytest.mark.parametrize(
    ("quoted", "hidden"),
    [
        (b"sk-ab/c", True),
        (b"SK-AB/C", True),
        (b"\\u0073k-ab\\/c", True),
        (b"\\U0073k-ab/c", False),
        (b"\\x73k\\x2dab/c", True),
        (b"%73k%2Dab%2fc", True),
        (b"&#115;k-ab&#x2F;c", True),
        (b"&#0000115;k-ab/c", True),
        (b"&#00000115;k-ab/c", False),
        (b"s k-ab/c", False),
        (b"sk-ab/", False),
    ],
)
def test_redaction_finds_a_secret_however_written(quoted: bytes, hidden: bool) -> None:
    """Each character as is in either case, JSON or JavaScript escaped, percent-encoded or an
    HTML reference (up to seven decimal digits) is the secret; a near miss is not."""
    body = b"<" + quoted + b">"
    assert (redacted(body, secret_forms(("sk-ab/c",))) == b"<[redacted]>") is hidden


def test_no_counted_endpoint_is_closed_as_uncounted() -> None:
    """The uncounted endpoints are outside the table: no table path (its slots filled with a
    plausible name) matches one, so closing them never closes an inference endpoint."""
    for slug, table in ENDPOINTS.items():
        for endpoint in table:
            path = endpoint.path.replace(PATH_MODEL_REST, "@cf/meta/llama")
            path = path.replace(PATH_MODEL, "gemini-2.0-flash").replace(PATH_ID, "gpt-4o")
            assert uncounted(path) is None, (slug, endpoint.path)


@pytest.mark.parametrize(
    ("glob", "path", "opens"),
    [
        ("/v1/batches", "/v1/batches", True),
        ("/v1/Batches*", "/v1/Batches/batch_1", True),
        ("/v1/*", "/v1/batches", False),
        ("/v1/*s", "/v1/batches", False),
        ("/v1/*", "/v1/realtime/client_secrets", False),
        ("/v1/realtime/*", "/v1/realtime/client_secrets", True),
        (
            "/google-ai-studio/*:batchGenerateContent",
            "/google-ai-studio/v1beta/models/g:batchGenerateContent",
            True,
        ),
        ("/google-ai-studio/*", "/google-ai-studio/v1alpha/auth_tokens", False),
        ("/v1/*", "/v1/files/file-1", True),
    ],
)
def test_uncounted_endpoints_open_only_by_name(glob: str, path: str, opens: bool) -> None:
    """An entry opens an endpoint the gateway does not count only when it spells out its name
    outside a `*`; other endpoints open to any matching glob."""
    assert opened((("*", glob),), "POST", path) is opens
