"""Fixtures of the docs tests: the site as `mkdocs build --strict` makes it, built once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.sessions import ROOT

MKDOCS = Path(sys.executable).with_name("mkdocs")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site's folder; a test that changes a file in it puts it back."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        check=True,
        timeout=240,
    )
    return target
