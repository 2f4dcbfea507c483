"""`aigw doctor`, `aigw usage`, `aigw smoke`: operate a deployment through the cloudflare SDK."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register `doctor`, `usage` and `smoke`, each with a `handler` taking the parsed args."""
