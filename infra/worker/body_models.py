"""The models a request body names, read as the Worker reads them (DESIGN §4): the body parsed as
`JSON.parse` does (refusing JSON two readers may read apart), every string under a key that names
a model (for the policy check), and the top-level `model` read without a parse (for the key pool
and the analytics data point).

`worker_template/body_models.js.j2` implements the same functions; the constants are rendered
into it from here. Which endpoints read a body, and the model a path names, are `endpoints`.
"""

from __future__ import annotations

import json
import re

CONTENT_KEYS = ("messages", "input", "contents", "metadata")
"""Keys whose values are conversation content or the client's own labels, never a model setting:
a tool call's arguments there may well have a `model` of their own."""
SCHEMA_NAME_KEYS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
"""JSON Schema keys (a function tool's `parameters`, a response schema) whose object's keys are
names the schema gives, never settings: a property called `model` there names no model."""
MODEL_KEY_ENDINGS = ("model", "models", "modelid", "modelname")
"""A key names a model when, lower-cased without `_` and `-`, it ends with one of these."""
MODEL_KEY_NAMES = ("fallback", "fallbacks")
"""Keys that name models without saying so: Anthropic's `fallbacks` (`"default"` among them)."""
MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects a checked body may have. Bodies of real requests nest
a dozen deep; a limit keeps a crafted one from exhausting the stack here or in the Worker."""


class UnreadableBody(ValueError):
    """A body no model can be read from the way the Worker reads it."""


class NotJson(UnreadableBody):
    """A body that is not JSON (`JSON.parse` refuses it): on an endpoint the operator opened, such
    a body (a multipart upload, say) goes upstream unread."""


class AmbiguousJson(UnreadableBody):
    """JSON that two readers may read apart (a key twice in one object: `JSON.parse` keeps the
    last value, other parsers the first) or nested past `MAX_JSON_DEPTH`: always refused."""


_CONTROL = re.compile("[\x00-\x1f\x7f]")
"""A key holding one of these (NUL above all) may be read apart: a parser built on C strings ends
`"model\\u0000x"` at the NUL and reads `model`, which aigw would not."""


def _no_constant(name: str) -> object:
    raise NotJson(f"{name} is not JSON")


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise AmbiguousJson("a key appears twice in one object")
    if any(_CONTROL.search(key) for key in document):
        raise AmbiguousJson("a key holds a control character")
    return document


def read_json(body: bytes) -> object:
    """A body parsed as the Worker's `JSON.parse` does; raises `NotJson` or `AmbiguousJson`.

    A BOM is dropped, numbers are doubles (a 5000-digit integer is no error), `NaN` and `Infinity`
    are not JSON. JSON with invalid UTF-8, or with a control character in a key, is
    `AmbiguousJson`: a provider may drop or replace the bytes `JSON.parse` replaces, and read a
    key aigw does not (`"mod\\xffel"` as `model`). One difference is left: text nested deeper than
    Python's recursion limit is `AmbiguousJson` here even when it is not JSON at all, which the
    Worker finds out (both refuse it, but on an opened endpoint, where the Worker passes text
    that is not JSON on unread and the provider refuses it).
    """
    try:
        text = body.decode("utf-8-sig")
        invalid = False
    except UnicodeDecodeError:
        text = body.decode("utf-8-sig", errors="replace")
        invalid = True
    try:
        document: object = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_no_constant,
            parse_int=float,
        )
    except RecursionError as error:
        raise AmbiguousJson("nested too deep") from error
    except UnreadableBody:
        raise
    except ValueError as error:
        raise NotJson("not JSON") from error
    if _depth(document) > MAX_JSON_DEPTH:
        raise AmbiguousJson("nested too deep")
    if invalid:
        raise AmbiguousJson("invalid UTF-8")
    return document


def _depth(document: object) -> int:
    """How deep arrays and objects nest in `document` (a scalar is 0), without recursion; past
    `MAX_JSON_DEPTH` it stops counting."""
    deepest = 0
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in value)
    return deepest


def is_model_key(key: str) -> bool:
    """Whether a body key names a model (`model`, `models`, `answering_model`, `modelId`, ...)."""
    name = key.lower().replace("_", "").replace("-", "")
    return name.endswith(MODEL_KEY_ENDINGS) or name in MODEL_KEY_NAMES


def body_models(document: object, models: list[str] | None = None) -> list[str]:
    """Every string a body holds under a key that names a model, at any depth but in content
    (`CONTENT_KEYS`): whatever the shape under that key (a list, lists in lists, `{"0": ...}`,
    `{"id": ...}`), every string in it, since a provider may read any of them as the model. The
    body nests at most `MAX_JSON_DEPTH` deep (`read_json`), so recursion is bounded."""
    found = [] if models is None else models
    if isinstance(document, list):
        for item in document:
            body_models(item, found)
    elif isinstance(document, dict):
        for key, child in document.items():
            if key in CONTENT_KEYS:
                continue
            if is_model_key(key):
                _strings(child, found)
            elif key in SCHEMA_NAME_KEYS and isinstance(child, dict):
                for schema in child.values():
                    body_models(schema, found)
            else:
                body_models(child, found)
    return found


def _strings(value: object, found: list[str]) -> None:
    """Every string in `value`, at any depth, appended to `found`."""
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, list | dict):
        for item in value.values() if isinstance(value, dict) else value:
            _strings(item, found)


MAX_MODEL_NAME = 256
"""The longest model name read from a body for routing; a longer one routes as `others`."""
_QUOTE, _BACKSLASH, _COLON = 0x22, 0x5C, 0x3A
_OPENERS, _CLOSERS = b"{[", b"}]"
_JSON_SPACE = b" \t\n\r"
_MODEL_KEY = b"model"


def top_level_model(body: bytes) -> str | None:
    """The top-level `"model"` string of a JSON object body, read for routing without parsing
    the body: the scan walks the structure and jumps over every string to its closing quote, so
    it costs little beside the body's size (bench.model_read), and stops at the first `model`
    key. None when the body is not an object, names no model at the top, or names it in a way
    this reader does not follow (a name over `MAX_MODEL_NAME` bytes as written, not UTF-8): a
    client that hides its model only misroutes itself. The policy check's full parse is another
    matter, and stays."""
    size = len(body)
    at = 0
    while at < size and body[at] in _JSON_SPACE:
        at += 1
    if at >= size or body[at] != 0x7B:
        return None
    depth = 0
    expect_key = False
    while at < size:
        byte = body[at]
        if byte == _QUOTE:
            end = _string_end(body, at)
            if end < 0:
                return None
            if depth == 1 and expect_key:
                expect_key = False
                if body[at + 1 : end] == _MODEL_KEY:
                    return _model_value(body, end + 1)
            at = end + 1
            continue
        if byte in _OPENERS:
            depth += 1
            expect_key = byte == 0x7B and depth == 1
        elif byte in _CLOSERS:
            depth -= 1
            if depth <= 0:
                return None
        elif byte == 0x2C and depth == 1:
            expect_key = True
        at += 1
    return None


def _string_end(body: bytes, start: int) -> int:
    """The index of the quote that closes the string opening at `start`, else -1."""
    at = start
    while True:
        at = body.find(b'"', at + 1)
        if at < 0:
            return -1
        backslashes = 0
        while body[at - 1 - backslashes] == _BACKSLASH:
            backslashes += 1
        if backslashes % 2 == 0:
            return at


def _model_value(body: bytes, at: int) -> str | None:
    """The string after a `"model"` key that ends before `at`, if it is a string, its escapes
    read."""
    size = len(body)
    while at < size and body[at] in _JSON_SPACE:
        at += 1
    if at >= size or body[at] != _COLON:
        return None
    at += 1
    while at < size and body[at] in _JSON_SPACE:
        at += 1
    if at >= size or body[at] != _QUOTE:
        return None
    end = _string_end(body, at)
    if end < 0 or end > at + 1 + MAX_MODEL_NAME or end == at + 1:
        return None
    raw = body[at + 1 : end]
    try:
        text = raw.decode("utf-8")
        # Escapes are read as JSON reads them, so the name is the one the provider reads.
        named = json.loads(f'"{text}"') if _BACKSLASH in raw else text
    except ValueError:
        return None
    return named if isinstance(named, str) else None
