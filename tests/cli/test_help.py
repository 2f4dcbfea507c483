"""What `aigw --help`, each command's help and `aigw --version` tell a reader."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest

from infra.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
OPERATE = ["doctor", "usage", "keys", "clients", "smoke"]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every `aigw` command's parser, by name."""
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def option_help(command: str, option: str) -> str:
    """The help text of one option of one command."""
    [action] = [a for a in subcommands()[command]._actions if option in a.option_strings]
    return action.help or ""


@pytest.mark.parametrize("command", ["usage", "keys", "clients", "smoke"])
def test_stack_option_speaks_of_this_command_only(command: str) -> None:
    """`--stack` says what this command reads of the stack, not what doctor does with it."""
    text = option_help(command, "--stack")
    assert "doctor" not in text
    assert "accountId" in text and "Pulumi.<stack>.yaml" in text


@pytest.mark.parametrize("command", OPERATE)
def test_operate_commands_name_the_environment_they_read(command: str) -> None:
    """The token, the API address, the account and the stack variables are in the help."""
    text = " ".join(subcommands()[command].format_help().split())
    for name in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_BASE_URL", "CLOUDFLARE_ACCOUNT_ID"):
        assert name in text, f"aigw {command} --help does not name {name}"
    assert "PULUMI_STACK" in text


@pytest.mark.parametrize("command", ["render", "dev"])
def test_local_commands_name_the_environment_they_read(command: str) -> None:
    """render and dev read the stack from PULUMI_STACK; dev its bindings too."""
    text = " ".join(subcommands()[command].format_help().split())
    assert "Environment:" in text and "PULUMI_STACK" in text


def test_top_level_help_points_to_the_docs(capsys: pytest.CaptureFixture[str]) -> None:
    """`aigw --help` says where the guides are."""
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "docs/" in text and "make docs" in text


def test_clients_takes_a_window_end_like_usage_and_keys() -> None:
    """`--until` on clients as on usage and keys."""
    for command in ("usage", "keys", "clients"):
        assert "ISO time" in option_help(command, "--until")


def test_version_is_the_projects(capsys: pytest.CaptureFixture[str]) -> None:
    """`aigw --version` prints pyproject.toml's version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"aigw {project['project']['version']}\n"
