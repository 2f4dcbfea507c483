"""Every input of the installed pulumi-cloudflare's `AiGateway` is a setting or left out on
purpose."""

from __future__ import annotations

import inspect

import pulumi_cloudflare as cloudflare
import pytest

from infra.gateway_inputs import (
    LEFT_OUT_OF_SETTINGS,
    SET_BY_SETTINGS,
    no_longer_inputs,
    undecided,
)
from infra.resources.gateway import SECRET_INPUTS, gateway_args
from infra.setting_forms import KNOWN_KEYS, SCALAR_SETTINGS
from infra.settings import SettingsError, load

REQUIRED = {"accountId": "0123456789abcdef0123456789abcdef", "providerKeys": {"openai": ["k"]}}


def provider_inputs() -> set[str]:
    """The keyword inputs `AiGatewayArgs` takes, read from the installed provider itself."""
    parameters = inspect.signature(cloudflare.AiGatewayArgs.__init__).parameters
    return {name for name, parameter in parameters.items() if parameter.kind.name == "KEYWORD_ONLY"}


def test_the_provider_is_read_not_assumed() -> None:
    """The inputs come from the installed class: the required ones and the new ones are there."""
    inputs = provider_inputs()
    assert {"account_id", "ai_gateway_id", "retry_max_attempts", "guardrails", "dlp"} <= inputs


def test_every_aigateway_input_is_decided() -> None:
    """No input of the installed provider is in neither table, and no entry names a gone input:
    a provider release that adds a gateway feature fails here until it is decided."""
    inputs = provider_inputs()
    assert undecided(inputs) == []
    assert no_longer_inputs(inputs) == []


def test_an_input_a_new_release_adds_is_named() -> None:
    """The check names an input it has not seen, and one that has disappeared."""
    inputs = provider_inputs()
    assert undecided(inputs | {"semantic_cache"}) == ["semantic_cache"]
    assert no_longer_inputs(inputs - {"zdr"}) == ["zdr"]


def test_an_input_is_a_setting_or_left_out_never_both() -> None:
    """Each decided input has one answer, and each setting named is one aigw knows."""
    assert not set(SET_BY_SETTINGS) & set(LEFT_OUT_OF_SETTINGS)
    assert set(SET_BY_SETTINGS.values()) <= set(KNOWN_KEYS)
    assert all(len(reason) > 20 for reason in LEFT_OUT_OF_SETTINGS.values())


def test_the_program_sends_the_inputs_its_settings_decide() -> None:
    """`gateway_args` gives every input a setting decides (log retention and logpush set; the
    secret `otels` aside), only inputs the
    provider has, and of the left-out ones only the fixed `authentication`."""
    logpush = {"publicKey": "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----"}
    settings, _ = load({**REQUIRED, "logRetention": {"maxLogs": 20000}, "logpush": logpush}, "dev")
    args = gateway_args(settings, ["default"])
    assert set(args) <= provider_inputs()
    # The secret inputs (otels) are set by create_gateway from the secrets, beside these.
    assert set(SET_BY_SETTINGS) - SECRET_INPUTS <= set(args)
    assert provider_inputs() >= SECRET_INPUTS
    assert set(args) & set(LEFT_OUT_OF_SETTINGS) == {"authentication"}


def test_gateway_retries_are_off_unless_set() -> None:
    """With nothing set the gateway is told explicitly not to retry (one attempt), so that only
    the Worker's failover retries, each time with another key."""
    settings, _ = load(REQUIRED, "dev")
    args = gateway_args(settings, ["default"])
    assert (args["retry_max_attempts"], args["retry_delay"], args["retry_backoff"]) == (
        1,
        0,
        "constant",
    )
    assert (args["log_classification"], args["byok_only"]) == (False, False)
    assert args["workers_ai_billing_mode"] == "postpaid"


def test_each_scalar_setting_reaches_its_input() -> None:
    """Values as Pulumi passes them (text) arrive typed at the `AiGateway` input each declares."""
    raw = {
        "gatewayMaxAttempts": "3",
        "gatewayRetryDelay": "500",
        "gatewayRetryBackoff": "exponential",
        "logClassification": "true",
        "workersAiBillingMode": "unified",
        "byokOnly": "true",
    }
    assert set(raw) == {key for key, setting in SCALAR_SETTINGS.items() if setting.gateway_input}
    settings, _ = load({**REQUIRED, **raw}, "dev")
    args = gateway_args(settings, ["default"])
    assert {
        SCALAR_SETTINGS[key].gateway_input: args[SCALAR_SETTINGS[key].gateway_input] for key in raw
    } == {
        "retry_max_attempts": 3,
        "retry_delay": 500,
        "retry_backoff": "exponential",
        "log_classification": True,
        "workers_ai_billing_mode": "unified",
        "byok_only": True,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"gatewayMaxAttempts": 6},
            "aigw:gatewayMaxAttempts: got 6; expected a whole number from 1 to 5",
        ),
        (
            {"gatewayMaxAttempts": "0"},
            "aigw:gatewayMaxAttempts: got '0'; expected a whole number from 1 to 5",
        ),
        (
            {"gatewayMaxAttempts": 2, "gatewayRetryDelay": 5001},
            "aigw:gatewayRetryDelay: got 5001; expected a whole number from 0 to 5000",
        ),
        (
            {"gatewayMaxAttempts": 2, "gatewayRetryBackoff": "random"},
            "aigw:gatewayRetryBackoff: got 'random'; expected one of 'constant', 'linear', "
            "'exponential'",
        ),
        ({"logClassification": "yes"}, "aigw:logClassification: got 'yes'; expected true or false"),
        (
            {"workersAiBillingMode": "prepaid"},
            "aigw:workersAiBillingMode: got 'prepaid'; expected one of 'postpaid', 'unified'",
        ),
        (
            {"logClassification": True, "collectLogs": False},
            "aigw:logClassification: got true with collectLogs false; log classification reads",
        ),
        (
            {"gatewayRetryDelay": 500},
            "aigw:gatewayRetryDelay: got 500 with gatewayMaxAttempts 1 (no gateway retries); it",
        ),
        (
            {"gatewayRetryBackoff": "linear"},
            "aigw:gatewayRetryBackoff: got 'linear' with gatewayMaxAttempts 1",
        ),
    ],
)
def test_invalid_gateway_settings_name_key_value_and_what_is_allowed(
    raw: dict[str, object], message: str
) -> None:
    """Each bad value stops `load` with one message: the key, the value and what is allowed."""
    with pytest.raises(SettingsError) as raised:
        load({**REQUIRED, **raw}, "dev")
    assert str(raised.value).startswith(message)
