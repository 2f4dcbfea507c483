"""`aigw render` and `aigw dev`: the rendered Worker, written out or served locally in workerd."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register `render` and `dev`; each sets `handler` to a function of the parsed args."""
