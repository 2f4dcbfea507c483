"""The error table (infra/worker/errors.py) holds exactly the codes the rendered Worker answers,
with the status and `type` each call gives."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from infra.settings import load
from infra.worker import errors, policy
from infra.worker.answers import ERROR_TYPES, UPSTREAM_ERROR_TYPE
from infra.worker.render import render_worker

# A client with every policy field, so that every policy check is in the source whatever the
# template renders conditionally.
RAW = {
    "accountId": "0123456789abcdef0123456789abcdef",
    "providerKeys": {"openai": ["sk-a"], "google-ai-studio": ["g-a"]},
    "clients": {
        "ci": {
            "models": ["gpt-*"],
            "providers": ["openai"],
            "rateLimit": {"limit": 10, "period": 60},
            "budget": {"limit": 5, "window": 3600},
            "expires": "2030-01-01",
            "endpoints": ["GET /v1/files/*"],
        }
    },
}
_CALL = re.compile(r"(?<![\w.])(error|policyError)\(")
_CONSTANT = re.compile(r'^const ([A-Z][A-Z0-9_]*) = ("[^"\n]*");$', re.MULTILINE)


@dataclass(frozen=True)
class Answer:
    """One `error(...)` / `policyError(...)` call of the rendered Worker with a fixed code."""

    function: str
    status: int | None
    """None when the status is the upstream's (`answer.status`)."""
    code: str
    type: str


def _arguments(source: str, start: int) -> list[str]:
    """The top-level arguments of the call whose `(` is at `start`: brackets, strings and
    template literals (with their `${…}`) are skipped whole."""
    arguments, current, stack = [], [], ["("]
    index = start + 1
    while stack:
        character = source[index]
        top = stack[-1]
        if top in "'\"":
            if character == "\\":
                current.append(source[index : index + 2])
                index += 2
                continue
            if character == top:
                stack.pop()
        elif top == "`":
            if character == "\\":
                current.append(source[index : index + 2])
                index += 2
                continue
            if character == "`":
                stack.pop()
            elif source.startswith("${", index):
                stack.append("${")
                current.append("${")
                index += 2
                continue
        elif character in "'\"`([{":
            stack.append(character)
        elif character in ")]}":
            stack.pop()
            if not stack:
                break
        elif character == "," and len(stack) == 1:
            arguments.append("".join(current).strip())
            current = []
            index += 1
            continue
        current.append(character)
        index += 1
    tail = "".join(current).strip()
    return [*arguments, tail] if tail else arguments


def worker_answers(source: str) -> list[Answer]:
    """Every call of the Worker's error helpers whose code is a literal or an UPPER_CASE constant
    (a lower-case name is a wrapper's parameter, its callers are found on their own)."""
    constants = {name: value.strip('"') for name, value in _CONSTANT.findall(source)}
    answers = []
    for match in _CALL.finditer(source):
        if source[max(0, match.start() - 9) : match.start()].endswith("function "):
            continue
        arguments = _arguments(source, match.end() - 1)
        code_text = arguments[1]
        if code_text.startswith('"'):
            code = code_text.strip('"')
        elif code_text in constants:
            code = constants[code_text]
        else:
            continue
        status = int(arguments[0]) if arguments[0].isdigit() else None
        if match.group(1) == "policyError":
            kind = policy.POLICY_ERROR_TYPES[status] if status is not None else "?"
        elif len(arguments) >= 5:
            kind = constants[arguments[4]]
        else:
            kind = ERROR_TYPES.get(status or 0, UPSTREAM_ERROR_TYPE)
        answers.append(Answer(match.group(1), status, code, kind))
    return answers


@pytest.fixture(scope="module")
def answers() -> list[Answer]:
    settings, _ = load(RAW, "dev")
    return worker_answers(render_worker(settings))


def test_the_scan_finds_the_worker_s_answers(answers: list[Answer]) -> None:
    """The scan reads literal codes, a constant's (`POOL_EXHAUSTED`) and policy refusals."""
    codes = {answer.code for answer in answers}
    assert {"invalid_client_token", "pool_exhausted", "model_not_allowed", "rate_limited"} <= codes


def test_every_code_the_worker_answers_is_in_the_table(answers: list[Answer]) -> None:
    """A code the Worker can answer and the table lacks (or a code no longer answered) fails."""
    assert {answer.code for answer in answers} == set(errors.ERRORS_BY_CODE)


def test_the_table_gives_each_code_its_status_and_type(answers: list[Answer]) -> None:
    """Each call's status (where fixed) and error `type` are the table's for its code."""
    for answer in answers:
        row = errors.ERRORS_BY_CODE[answer.code]
        if answer.status is not None:
            assert answer.status in row.statuses, answer
        assert answer.type == row.type, answer


def test_a_code_missing_from_the_table_is_caught(
    answers: list[Answer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a row taken out, the comparison names exactly that code."""
    table = dict(errors.ERRORS_BY_CODE)
    del table["client_token_expired"]
    monkeypatch.setattr(errors, "ERRORS_BY_CODE", table)
    assert {answer.code for answer in answers} - set(errors.ERRORS_BY_CODE) == {
        "client_token_expired"
    }


def test_a_new_error_call_is_found() -> None:
    """A call added to the source, its code a literal or a constant, is read with its status."""
    source = (
        'const NEW_CODE = "brand_new";\n'
        "function f() {\n"
        '  return error(418, NEW_CODE, `a ${"(nested)"} message, with commas`, {}, UP);\n'
        "}\n"
        'const UP = "upstream_error";\n'
    )
    assert worker_answers(source) == [Answer("error", 418, "brand_new", "upstream_error")]


def test_codes_are_unique_and_families_known() -> None:
    """One row per code, each in a family the pages show."""
    codes = [error.code for error in errors.WORKER_ERRORS]
    assert len(codes) == len(set(codes))
    assert {error.family for error in errors.WORKER_ERRORS} == set(errors.FAMILIES)
