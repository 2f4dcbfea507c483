"""Keys and tokens packed into Worker variables under Cloudflare's size limit, and read back."""

from __future__ import annotations

import json

import pytest

from infra.providers import secret_values
from infra.secret_bindings import (
    WORKER_VARIABLE_LIMITS,
    joined_text,
    numbered_name,
    pack,
    packed_bindings,
)
from infra.secret_settings import GENERATED_TOKEN_LENGTH
from infra.settings import SettingsError, load
from infra.worker.auth import split_list

ACCOUNT = "0123456789abcdef0123456789abcdef"
LIMIT = WORKER_VARIABLE_LIMITS.value_bytes


def _bytes(text: str) -> int:
    return len(text.encode())


def test_the_limits_are_cloudflares() -> None:
    """5,000 bytes a variable; 64 variables on Workers Free, 128 on Paid; aigw keeps to 64."""
    assert (LIMIT, WORKER_VARIABLE_LIMITS.per_worker_free) == (5000, 64)
    assert WORKER_VARIABLE_LIMITS.per_worker_paid == 128
    assert WORKER_VARIABLE_LIMITS.per_worker == 64


@pytest.mark.parametrize(
    ("second", "texts"),
    [
        # 2,499 + the new line + 2,500: exactly the limit, one variable.
        ("b" * 2500, 1),
        # One byte more and the second entry starts the next variable.
        ("b" * 2501, 2),
    ],
)
def test_a_variable_holds_exactly_the_limit(second: str, texts: int) -> None:
    """Entries and the one-byte separators between them fill a variable up to the limit, and not
    one byte past it."""
    packed = pack(["a" * 2499, second])
    assert len(packed) == texts
    assert max(_bytes(text) for text in packed) <= LIMIT


@pytest.mark.parametrize(("last", "texts"), [("b", 1), ("bc", 2)])
def test_sizes_are_bytes_of_utf8_not_characters(last: str, texts: int) -> None:
    """2,499 two-byte characters are 4,998 bytes: with the separator, one more byte fits and two
    do not, though the characters number only 2,501."""
    packed = pack(["é" * 2499, last])
    assert len(packed) == texts
    assert _bytes(packed[0]) == (5000 if texts == 1 else 4998)


def test_an_entry_over_the_limit_alone_is_refused() -> None:
    """A key or token is never split: one longer than a variable cannot be packed."""
    assert pack(["k" * LIMIT]) == ["k" * LIMIT]
    with pytest.raises(ValueError, match="5001 bytes"):
        pack(["k" * (LIMIT + 1)])


def test_parts_are_numbered_from_the_second() -> None:
    """The first part keeps the binding's own name; the rest are NAME_2, NAME_3, …"""
    assert [numbered_name("OPENAI_API_KEYS", n) for n in (1, 2, 3)] == [
        "OPENAI_API_KEYS",
        "OPENAI_API_KEYS_2",
        "OPENAI_API_KEYS_3",
    ]
    packed = packed_bindings("CLIENT_TOKENS", ["a" * 3000, "b" * 3000, "c" * 3000])
    assert list(packed) == ["CLIENT_TOKENS", "CLIENT_TOKENS_2", "CLIENT_TOKENS_3"]
    assert packed_bindings("CLIENT_TOKENS", []) == {"CLIENT_TOKENS": ""}


def test_packed_parts_read_back_as_the_same_entries_in_order() -> None:
    """What `pulumi up` binds, the Worker's model reads back as the same entries in the same
    order (rotation order is configuration order)."""
    keys = [f"sk-proj-{number:03d}-" + "k" * 155 for number in range(100)]
    env = secret_values({"openai": keys}, None, None)
    assert len(env) == 4
    assert list(split_list(joined_text(env, "OPENAI_API_KEYS"))) == keys


def test_reading_stops_at_the_first_missing_number() -> None:
    """Parts after a gap are not read; an unset binding reads as empty."""
    env = {"KEYS": "a", "KEYS_2": "b", "KEYS_4": "d"}
    assert joined_text(env, "KEYS") == "a\nb"
    assert joined_text(env, "OTHER") == ""


def _config(**extra: object) -> dict[str, object]:
    return {"accountId": ACCOUNT, **{key: json.dumps(value) for key, value in extra.items()}}


def test_a_key_at_the_limit_loads_and_one_byte_more_is_refused() -> None:
    """A key that fills a variable alone is accepted; one byte longer, `load` names it."""
    load(_config(providerKeys={"openai": ["k" * LIMIT]}), "dev")
    with pytest.raises(
        SettingsError,
        match=r"^aigw:providerKeys\.openai\[1\]: got a key of 5001 bytes; Cloudflare stores at "
        r"most 5000 bytes in one Worker variable$",
    ):
        load(_config(providerKeys={"openai": ["sk-a", "k" * (LIMIT + 1)]}), "dev")


def test_a_client_entry_over_the_limit_is_refused_without_showing_it() -> None:
    """`name:token` must fit one variable; the message gives its size, never the token."""
    token = "t" * (LIMIT - len("laptop:") + 1)
    with pytest.raises(SettingsError) as refused:
        load(_config(providerKeys={"openai": ["sk-a"]}, clientTokens={"laptop": token}), "dev")
    assert str(refused.value).startswith("aigw:clientTokens.laptop: got a name:token entry of 5001")
    assert token not in str(refused.value)
    load(_config(providerKeys={"openai": ["sk-a"]}, clientTokens={"laptop": token[1:]}), "dev")


def test_a_gateway_token_over_the_limit_is_refused() -> None:
    """GATEWAY_TOKEN is one variable, never numbered."""
    with pytest.raises(SettingsError, match=r"^aigw:gatewayToken: got a token of 5001 bytes"):
        load({**_config(providerKeys={"openai": ["sk-a"]}), "gatewayToken": "g" * 5001}, "dev")


def test_more_variables_than_a_worker_may_have_stop_at_load() -> None:
    """Keys of 2,500 bytes take one variable each: 62 of them, the client tokens and the gateway
    token make 64 and load; 63 make 65 and stop, with the limit and what to do."""
    keys = [f"{number:02d}" + "k" * 2498 for number in range(63)]
    load(_config(providerKeys={"openai": keys[:62]}), "dev")
    with pytest.raises(SettingsError) as refused:
        load(_config(providerKeys={"openai": keys}), "dev")
    message = str(refused.value)
    assert message.startswith(
        "aigw:providerKeys: got keys and client tokens that need 65 Worker variables (63 for "
        "provider keys, 1 for client tokens, 1 for the gateway token"
    )
    assert "64 variables per Worker on Workers Free and 128 on Paid" in message
    assert "split them over two stacks" in message


def test_generated_tokens_count_at_their_length() -> None:
    """Clients without a token are counted with a generated token's length, which `load` knows
    before the token exists: the count is what `pulumi up` will bind."""
    # One entry is "c-NNNN-<50 more>:" and 48 characters: 106 bytes, so 46 fit a variable.
    names = [f"c-{number:04d}-" + "n" * 50 for number in range(62 * 46 + 1)]
    entry = f"{names[0]}:" + "x" * GENERATED_TOKEN_LENGTH
    assert _bytes(entry) == 106 and 46 * 107 - 1 <= LIMIT < 47 * 107 - 1
    clients = {name: {} for name in names}
    keys = {"openai": ["sk-a"]}
    load(_config(providerKeys=keys, clients=dict(list(clients.items())[:-1])), "dev")
    with pytest.raises(SettingsError, match=r"^aigw:clientTokens: got .* need 65 Worker variables"):
        load(_config(providerKeys=keys, clients=clients), "dev")
