"""Real-cloud fixtures: skip with a reason naming what is missing, else one deployed stack."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.cloud.ephemeral import DeployedStack, ephemeral_stack, missing_requirements


@pytest.fixture(scope="module")
def deployed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployedStack]:
    """An aigw stack deployed for this module's tests, destroyed even when one of them fails."""
    reason = missing_requirements(os.environ)
    if reason is not None:
        pytest.skip(reason)
    with ephemeral_stack(
        tmp_path_factory.mktemp("pulumi-state"),
        account_id=os.environ["CLOUDFLARE_ACCOUNT_ID"],
        openai_key=os.environ["AIGW_TEST_OPENAI_KEY"],
    ) as stack:
        yield stack
