"""An ephemeral aigw stack on a real Cloudflare account: deployed, then always torn down."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pulumi import automation as auto

ROOT = Path(__file__).resolve().parent.parent.parent

REQUIRED_ENV = {
    "CLOUDFLARE_API_TOKEN": "an API token with Workers Scripts Edit, AI Gateway Edit, Account "
    "Analytics Read and "
    "Account API Tokens Edit on the account",
    "CLOUDFLARE_ACCOUNT_ID": "the account to deploy into, 32 hex digits",
    "AIGW_TEST_OPENAI_KEY": "an OpenAI API key for one small chat completion",
}
MODEL_ENV = "AIGW_TEST_OPENAI_MODEL"
DEFAULT_MODEL = "gpt-4o-mini"
STACK_PREFIX = "cloudtest-"
FIRST_CLIENT = "default"
"""The client with no limits, the one a first-time user gets."""
BUDGET_CLIENT = "frugal"
"""A client whose budget one small completion spends, to see AI Gateway's spend limit refuse it."""
TINY_BUDGET = {"limit": 0.00001, "window": 3600}


def missing_requirements(
    environ: Mapping[str, str], which: Callable[[str], str | None] = shutil.which
) -> str | None:
    """Why the real-cloud tests cannot run here, naming exactly what to set; None when they can."""
    missing = [name for name in REQUIRED_ENV if not environ.get(name)]
    if missing:
        wanted = "; ".join(f"{name} ({REQUIRED_ENV[name]})" for name in missing)
        return f"real-cloud test: set {wanted}"
    if which("pulumi") is None:
        return (
            "real-cloud test: the Pulumi CLI is not on PATH "
            "(https://www.pulumi.com/docs/iac/download-install/)"
        )
    return None


@dataclass(frozen=True)
class DeployedStack:
    """What the tests need from one `pulumi up` of the ephemeral stack."""

    name: str
    account_id: str
    gateway_id: str
    url: str
    openai_base_url: str
    client_name: str
    client_token: str = field(repr=False)
    provider_key: str = field(repr=False)
    client_tokens: Mapping[str, str] = field(repr=False, default_factory=dict)
    """Every client's generated token, by name."""


def stack_config(account_id: str, openai_key: str) -> dict[str, auto.ConfigValue]:
    # No clientTokens and no gatewayToken: the program generates the tokens of the clients it is
    # told about and creates the gateway token, the path a first-time user takes.
    clients = {FIRST_CLIENT: {}, BUDGET_CLIENT: {"budget": TINY_BUDGET}}
    return {
        "aigw:accountId": auto.ConfigValue(account_id),
        "aigw:providerKeys": auto.ConfigValue(json.dumps({"openai": [openai_key]}), secret=True),
        "aigw:clients": auto.ConfigValue(json.dumps(clients)),
    }


@contextmanager
def ephemeral_stack(state_dir: Path, account_id: str, openai_key: str) -> Iterator[DeployedStack]:
    """`pulumi up` of a new stack whose state is in `state_dir`; destroyed and removed on exit."""
    name = STACK_PREFIX + secrets.token_hex(4)
    # A file rather than a variable, so that a failed teardown can still be finished by hand.
    passphrase_file = state_dir / "passphrase"
    passphrase_file.touch(mode=0o600)
    passphrase_file.write_text(secrets.token_urlsafe(24))
    workspace_env = {
        # Overrides Pulumi.yaml's `file://~`: this run's state stays in its own directory.
        "PULUMI_BACKEND_URL": state_dir.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    stack = auto.create_or_select_stack(
        stack_name=name,
        work_dir=str(ROOT),
        opts=auto.LocalWorkspaceOptions(env_vars=workspace_env, secrets_provider="passphrase"),
    )
    try:
        stack.set_all_config(stack_config(account_id, openai_key))
        # show_secrets=False: a failing command's message carries its output into the test report.
        outputs = stack.up(color="never", show_secrets=False, suppress_outputs=True).outputs
        client_tokens = dict(outputs["clientTokens"].value)
        yield DeployedStack(
            name=name,
            account_id=account_id,
            gateway_id=str(outputs["gatewayId"].value),
            url=str(outputs["url"].value),
            openai_base_url=str(outputs["openaiBaseUrl"].value),
            client_name=FIRST_CLIENT,
            client_token=client_tokens[FIRST_CLIENT],
            provider_key=openai_key,
            client_tokens=client_tokens,
        )
    finally:
        _tear_down(stack, name, state_dir)


def _tear_down(stack: auto.Stack, name: str, state_dir: Path) -> None:
    """Destroy everything the stack created, then forget the stack; say how to finish by hand."""
    try:
        stack.destroy(color="never", show_secrets=False)
    except auto.CommandError as error:
        # State, passphrase file and stack config stay, so that the resources can still be deleted.
        raise RuntimeError(
            f"pulumi destroy of the test stack {name} failed; finish it with "
            f"PULUMI_BACKEND_URL={state_dir.as_uri()} "
            f"PULUMI_CONFIG_PASSPHRASE_FILE={state_dir / 'passphrase'} "
            f"pulumi destroy --cwd {ROOT} --stack {name}, then pulumi stack rm {name}"
        ) from error
    stack.workspace.remove_stack(name)
    # `stack rm` deletes the stack's config file; make sure none is left in the work tree.
    (ROOT / f"Pulumi.{name}.yaml").unlink(missing_ok=True)
    shutil.rmtree(state_dir)
