"""The generated reference pages (settings, `aigw` commands) and Pulumi.yaml's declared block:
`python -m infra.cli.reference`."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from infra.cli.main import build_parser
from infra.reference import GENERATED_NOTE, settings_reference, with_pulumi_yaml_block

HELP_COLUMNS = 100
"""The terminal width the CLI reference shows help at (argparse reads `COLUMNS`)."""
PROJECT_FILE = Path("Pulumi.yaml")
SETTINGS_PAGE = Path("docs/reference/settings.md")
CLI_PAGE = Path("docs/reference/cli.md")


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """The Markdown of docs/reference/cli.md: `aigw --help`, then each command's options."""
    _fix_width(parser)
    commands = _subcommands(parser)
    lines = [
        "# `aigw` command reference",
        "",
        "This page lets you look up every `aigw` command and option without running `--help`.",
        "",
        GENERATED_NOTE.format(sources="the argument parser in infra/cli/"),
        "",
        "```console",
        "$ aigw --help",
        parser.format_help().rstrip("\n"),
        "```",
        "",
    ]
    for name, command in commands.items():
        _fix_width(command)
        lines += [
            f"## `aigw {name}`",
            "",
            " ".join((command.description or "").split()),
            "",
            "```text",
            command.format_usage().rstrip("\n"),
            "```",
            "",
            "| option | what it does |",
            "|---|---|",
        ]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flags = ", ".join(action.option_strings) or action.dest
            value = f" {action.metavar}" if action.metavar else ""
            if not value and action.nargs != 0 and action.option_strings:
                value = f" {action.dest.upper()}"
            text = (action.help or "") % {"default": action.default}
            lines.append(f"| `{flags}{value}` | {text.replace('|', '&#124;')} |")
        lines.append("")
    return "\n".join(lines)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _fix_width(parser: argparse.ArgumentParser) -> None:
    """Format help as on a terminal `HELP_COLUMNS` wide, whatever the terminal here is."""
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=HELP_COLUMNS - 2)


def pages(root: Path) -> dict[Path, str]:
    """Each generated page (path under `root`) and what it must contain."""
    project_text = with_pulumi_yaml_block((root / PROJECT_FILE).read_text(encoding="utf-8"))
    project = yaml.safe_load(project_text)
    return {
        root / PROJECT_FILE: project_text,
        root / SETTINGS_PAGE: settings_reference(project),
        root / CLI_PAGE: cli_reference(build_parser()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated pages; with `--check`, only say which are stale (status 1)."""
    parser = argparse.ArgumentParser(prog="python -m infra.cli.reference", description=__doc__)
    parser.add_argument("--check", action="store_true", help="change nothing; fail if stale")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository root")
    args = parser.parse_args(argv)
    stale = []
    for path, text in pages(args.root).items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
