"""Pools and client lists too large for one Worker variable, as numbered bindings, in workerd."""

from __future__ import annotations

import json

import openai
import pytest

from infra.cli.workerd import RunningWorker
from infra.providers import secret_values
from infra.secret_bindings import WORKER_VARIABLE_LIMITS
from tests.upstream import FakeGateway
from tests.worker.conftest import MakeWorker

MESSAGES = [{"role": "user", "content": "Say hello"}]
# An OpenAI project key is about 164 characters: 40 of them need two 5,000-byte variables.
PROJECT_KEYS = tuple(f"sk-proj-test-{number:03d}-" + "k" * 147 for number in range(40))
# A generated client token is 48 characters: 120 clients need two variables.
MANY_CLIENTS = {
    f"client-{number:03d}": f"tok-test-{number:03d}-" + "t" * 38 for number in range(120)
}


def _client(worker: RunningWorker, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=worker.url + "/v1", api_key=token, max_retries=0, timeout=30)


def test_the_fixtures_really_span_two_variables() -> None:
    """Both pools below need a second, numbered binding, each part within Cloudflare's limit."""
    bindings = secret_values({"openai": PROJECT_KEYS}, MANY_CLIENTS, "gateway-token")
    assert sorted(bindings) == [
        "CLIENT_TOKENS",
        "CLIENT_TOKENS_2",
        "GATEWAY_TOKEN",
        "OPENAI_API_KEYS",
        "OPENAI_API_KEYS_2",
    ]
    limit = WORKER_VARIABLE_LIMITS.value_bytes
    assert all(len(text.encode()) <= limit for text in bindings.values())


def test_every_key_of_a_pool_over_one_variable_is_used(
    make_worker: MakeWorker, upstream: FakeGateway
) -> None:
    """With 40 project keys deployed over two bindings, 40 requests use each key once."""
    worker = make_worker(provider_keys={"openai": PROJECT_KEYS})
    client = _client(worker, "tok-test-alice-0001")
    for _ in PROJECT_KEYS:
        completion = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
        assert completion.choices[0].message.content == "Hello from the fake gateway."
    assert upstream.key_counts() == dict.fromkeys(PROJECT_KEYS, 1)


@pytest.mark.parametrize("client_name", ["client-000", "client-119"])
def test_a_client_in_either_part_of_client_tokens_is_served(
    make_worker: MakeWorker, upstream: FakeGateway, client_name: str
) -> None:
    """The first client (in CLIENT_TOKENS) and the last (in CLIENT_TOKENS_2) are both served, and
    the gateway's metadata names them; a token that is in neither is refused."""
    worker = make_worker(client_tokens=MANY_CLIENTS)
    completion = _client(worker, MANY_CLIENTS[client_name]).chat.completions.create(
        model="gpt-test", messages=MESSAGES
    )
    assert completion.choices[0].message.content == "Hello from the fake gateway."
    [request] = upstream.requests
    assert json.loads(request.headers["cf-aig-metadata"])["client"] == client_name
    with pytest.raises(openai.AuthenticationError):
        _client(worker, "tok-test-nobody-" + "t" * 32).models.list()
