"""`aigw clients` against the loopback Cloudflare API: policies beside use, figures by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.cli.main import main
from tests.cloudflare_fake import ACCOUNT_ID, API_TOKEN, GATEWAY_ID, FakeCloudflare

STACK = f"""\
config:
  aigw:accountId: {ACCOUNT_ID}
  aigw:gatewayId: {GATEWAY_ID}
  aigw:providerKeys:
    openai:
      - secure: v1:PLACEHOLDER-a
    anthropic:
      - secure: v1:PLACEHOLDER-b
  aigw:clientTokens:
    laptop:
      secure: v1:PLACEHOLDER-c
    ci:
      - secure: v1:PLACEHOLDER-d
      - secure: v1:PLACEHOLDER-e
  aigw:clients:
    alice:
      models: [gpt-4o-mini, "claude-*"]
      providers: [anthropic]
      rateLimit: {{limit: 10, period: 60}}
      budget: {{limit: 1, window: 3600}}
      expires: "2020-01-01"
    ci:
      budget: {{limit: 5, window: 86400, technique: sliding}}
      expires: "2099-12-31T18:00:00+02:00"
    "*":
      budget: {{limit: 0.5, window: 3600}}
      rateLimit: {{limit: 100, period: 10}}
  aigw:budget: {{limit: 10, window: 86400}}
"""
FIELDS = [
    "name",
    "requests",
    "cost",
    "budget",
    "spent",
    "remaining",
    "rateLimit",
    "models",
    "providers",
    "expires",
    "expired",
]


def write_stack(text: str, stack: str = "dev") -> None:
    """Write `Pulumi.<stack>.yaml` in the current (temporary) directory."""
    with open(f"Pulumi.{stack}.yaml", "w", encoding="utf-8") as file:
        file.write(text)


def seed(fake: FakeCloudflare) -> None:
    """Logs at known distances from now, with costs simple enough to add up by hand."""
    now = datetime.now(UTC)
    for _ in range(3):
        fake.add_log(now - timedelta(minutes=10), cost=0.1, client="laptop")
    fake.add_log(now - timedelta(hours=2), cost=0.4, client="laptop")
    for _ in range(2):
        fake.add_log(now - timedelta(minutes=30), cost=0.6, client="alice")
    fake.add_log(now - timedelta(hours=20), cost=1.5, client="ci")
    fake.add_log(now - timedelta(days=3), cost=2.0, client="ci")
    fake.add_log(now - timedelta(minutes=5), cost=0.05, client="bob")
    fake.add_log(now - timedelta(minutes=5), cost=0.01, client=None)


def clients_json(capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    """Run `aigw clients --json` in-process and decode what it printed."""
    assert main(["clients", "--source", "logs", "--json", *options]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The rows of `clients --json`, by client name."""
    return {row["name"]: row for row in document["clients"]}


def test_each_client_shows_its_policy_beside_figures_worked_out_by_hand(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Requests and cost over 24h; spent over the budget's own window; "*" for laptop."""
    write_stack(STACK)
    seed(cloudflare_api)
    rows = by_name(clients_json(capsys))
    # Stack clients first (tokens, then policies), then clients only the logs know, busiest first.
    assert list(rows) == ["laptop", "ci", "alice", "(unknown)", "bob"]
    assert rows["laptop"] == {
        "name": "laptop",
        "requests": 4,
        "cost": 0.7,
        "budget": {"limit": 0.5, "window": 3600, "technique": "fixed"},
        "spent": 0.3,  # the 2-hour-old request is outside the 1-hour budget window
        "remaining": 0.2,
        "rateLimit": {"limit": 100, "period": 10},
        "models": None,
        "providers": None,
        "expires": None,
        "expired": False,
    }
    assert rows["alice"] == {
        "name": "alice",
        "requests": 2,
        "cost": 1.2,
        "budget": {"limit": 1.0, "window": 3600, "technique": "fixed"},
        "spent": 1.2,
        "remaining": 0.0,
        "rateLimit": {"limit": 10, "period": 60},
        "models": ["gpt-4o-mini", "claude-*"],
        "providers": ["anthropic"],
        "expires": "2020-01-01T00:00:00.000Z",
        "expired": True,
    }
    ci = rows["ci"]
    assert (ci["requests"], ci["cost"], ci["spent"], ci["remaining"]) == (1, 1.5, 1.5, 3.5)
    assert ci["budget"]["technique"] == "sliding"
    assert (ci["expires"], ci["expired"]) == ("2099-12-31T16:00:00.000Z", False)
    # bob is not in the stack file (his token could be in one encrypted clientTokens): "*" applies.
    assert rows["bob"] == rows["laptop"] | {
        "name": "bob",
        "requests": 1,
        "cost": 0.05,
        "spent": 0.05,
        "remaining": 0.45,
    }
    # Requests without a client name in their metadata belong to no client and no policy.
    assert rows["(unknown)"] == dict.fromkeys(FIELDS) | {
        "name": "(unknown)",
        "requests": 1,
        "cost": 0.01,
        "expired": False,
    }


def test_gateway_budget_counts_every_client_inside_its_window(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """aigw:budget's spend is every logged cost of the last day, whoever sent it."""
    write_stack(STACK)
    seed(cloudflare_api)
    gateway = clients_json(capsys)["gateway"]
    spent = 0.3 + 0.4 + 1.2 + 1.5 + 0.05 + 0.01  # the 3-day-old request is outside
    assert gateway == {
        "budget": {"limit": 10.0, "window": 86400, "technique": "fixed"},
        "spent": round(spent, 6),
        "remaining": round(10 - spent, 6),
    }


def test_since_moves_requests_and_cost_but_not_what_a_budget_spent(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A week back counts ci's 3-day-old request; its budget still looks back one day only."""
    write_stack(STACK)
    seed(cloudflare_api)
    ci = by_name(clients_json(capsys, "--since", "7d"))["ci"]
    assert (ci["requests"], ci["cost"], ci["spent"]) == (2, 3.5, 1.5)
    laptop = by_name(clients_json(capsys, "--since", "1h"))["laptop"]
    assert (laptop["requests"], laptop["cost"], laptop["spent"]) == (3, 0.3, 0.3)


def test_until_ends_the_window_of_requests_and_cost_but_not_of_a_budget(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """--until an hour ago leaves out laptop's recent requests, not what its budget spent."""
    write_stack(STACK)
    seed(cloudflare_api)
    until = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    laptop = by_name(clients_json(capsys, "--since", "7d", "--until", until))["laptop"]
    # Only the 2-hour-old request is inside; the budget still counts its own hour up to now.
    assert (laptop["requests"], laptop["cost"], laptop["spent"]) == (1, 0.4, 0.3)


def test_logs_are_read_back_as_far_as_the_longest_budget(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --since 1h the API is still asked for the last day, the longest budget window."""
    write_stack(STACK)
    before = datetime.now(UTC)
    clients_json(capsys, "--since", "1h")
    [call] = cloudflare_api.list_calls()
    start = datetime.fromisoformat(call["start_date"])
    assert (
        timedelta(days=1) <= before - start + timedelta(seconds=5) <= timedelta(days=1, minutes=1)
    )


def test_every_field_is_in_each_row(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each row has exactly DESIGN §5's fields, in its order, even before any request."""
    write_stack(STACK)
    document = clients_json(capsys)
    assert list(document) == ["clients", "gateway"]
    assert [list(row) for row in document["clients"]] == [FIELDS] * 3
    assert [row["requests"] for row in document["clients"]] == [0, 0, 0]


def test_a_stack_without_tokens_or_clients_shows_the_generated_default(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """With neither clientTokens nor clients the program generates `default`; it is listed."""
    write_stack(f"config:\n  aigw:accountId: {ACCOUNT_ID}\n  aigw:gatewayId: {GATEWAY_ID}\n")
    rows = clients_json(capsys)["clients"]
    # Listed before it sent anything: the stack file alone says it exists.
    assert [(row["name"], row["requests"], row["cost"], row["budget"]) for row in rows] == [
        ("default", 0, 0.0, None)
    ]


def test_tokens_stored_as_one_secret_still_list_the_policies(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """When clientTokens is one encrypted value its names are unknown: the policies still show."""
    text = STACK.replace(
        "  aigw:clientTokens:\n    laptop:\n      secure: v1:PLACEHOLDER-c\n    ci:\n"
        "      - secure: v1:PLACEHOLDER-d\n      - secure: v1:PLACEHOLDER-e\n",
        "  aigw:clientTokens:\n    secure: v1:PLACEHOLDER-all\n",
    )
    assert text != STACK
    write_stack(text)
    assert list(by_name(clients_json(capsys))) == ["alice", "ci"]


def test_without_a_stack_file_only_the_logs_speak(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --account-id and --gateway-id and no stack, each logged client shows, no policy."""
    seed(cloudflare_api)
    document = clients_json(capsys, "--account-id", ACCOUNT_ID, "--gateway-id", GATEWAY_ID)
    rows = by_name(document)
    assert list(rows) == ["laptop", "alice", "(unknown)", "bob", "ci"]
    assert rows["laptop"] == dict.fromkeys(FIELDS) | {
        "name": "laptop",
        "requests": 4,
        "cost": 0.7,
        "expired": False,
    }
    assert document["gateway"] == {"budget": None, "spent": None, "remaining": None}


def test_table_shows_policies_and_what_is_left(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """The human view names each client with its budget, spend, limits and expiry."""
    write_stack(STACK)
    seed(cloudflare_api)
    assert main(["clients", "--source", "logs"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"stack dev, gateway {GATEWAY_ID}, requests and cost since ")
    alice = next(line for line in lines if line.strip().startswith("alice"))
    for text in ("$1.20", "$1.00/1h", "$0.000000", "10/60s"):
        assert text in alice, (text, alice)
    assert "2020-01-01 (expired)" in alice
    assert "gpt-4o-mini, claude-*" in alice and "anthropic" in alice
    laptop = next(line for line in lines if line.strip().startswith("laptop"))
    assert "$0.500000/1h" in laptop and "100/10s" in laptop and "never" in laptop
    ci = next(line for line in lines if line.strip().startswith("ci"))
    assert "$5.00/1d sliding" in ci and "2099-12-31T16:00:00Z" in ci
    assert "gateway budget $10.00/1d: spent $3.46, $6.54 left" in out
    assert API_TOKEN not in out


def test_missing_gateway_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """As with `aigw usage`: the gateway id, the account and where the id came from."""
    assert (
        main(
            ["clients", "--source", "logs", "--account-id", ACCOUNT_ID, "--gateway-id", "aigw-prod"]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("aigw: error: ") and err.count("\n") == 1
    assert f"gateway 'aigw-prod' was not found in account {ACCOUNT_ID} (HTTP 404)" in err


def test_invalid_policy_in_the_stack_is_one_clear_sentence(
    cloudflare_api: FakeCloudflare, capsys: pytest.CaptureFixture[str]
) -> None:
    """A policy `pulumi up` would refuse is refused here with the same message."""
    write_stack(STACK.replace("period: 60}", "period: 30}"))
    assert main(["clients", "--source", "logs"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "aigw: error: Pulumi.dev.yaml: aigw:clients.alice.rateLimit.period: got 30; expected 10 or"
    )
    assert cloudflare_api.list_calls() == []
