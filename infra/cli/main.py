"""The `aigw` command: one parser, and the registry of every subcommand beneath it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

from infra.cli import clients, doctor, keys, local, smoke, usage

PACKAGE = "aigw"
DOCS = (
    "Guides and references: the docs/ folder of the aigw checkout (make docs serves the site on "
    "http://127.0.0.1:8000); COMMAND --help names what a command reads, environment included."
)


def build_parser() -> argparse.ArgumentParser:
    """The full `aigw` argument parser."""
    parser = argparse.ArgumentParser(
        prog="aigw",
        description="Run, inspect and operate an aigw deployment (AI Gateway + Worker).",
        epilog=DOCS,
    )
    # The installed distribution's version: pyproject.toml's, which CHANGELOG.md's latest names.
    parser.add_argument("--version", action="version", version=f"%(prog)s {version(PACKAGE)}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local.add_commands(commands)
    doctor.add_command(commands)
    usage.add_command(commands)
    smoke.add_command(commands)
    keys.add_command(commands)
    clients.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `aigw` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
